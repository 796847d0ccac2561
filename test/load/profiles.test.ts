import { readdir } from 'node:fs/promises';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { arrivalTimes, assertLoopback, backoffDelay, evaluateThresholds, loadProfile, parseProfile, ProfileError, type KindSummary } from '../../src/load/index.js';

describe('load profiles', () => {
  it('loads every shipped profile', async () => {
    const files = (await readdir('scenarios')).filter((f) => f.startsWith('load-'));
    expect(files.length).toBeGreaterThanOrEqual(7);
    for (const f of files) expect((await loadProfile(`scenarios/${f}`)).name, f).toBe(f.replace(/^load-|\.yaml$/g, ''));
  });

  it('names the field of a mistake', () => {
    const err = (text: string): ProfileError => {
      try {
        parseProfile(text, 'p.yaml');
      } catch (e) {
        return e as ProfileError;
      }
      throw new Error('expected an error');
    };
    expect(err('name: x\nkind: http\nrequest: join\nphases: [{duration: 1, arrivalRate: 1}]\nconections: 5').issues[0]!.message).toContain('conections');
    expect(err('name: x\nkind: http\nrequest: fetch\nphases: [{duration: 1, arrivalRate: 1}]').issues[0]!.path).toBe('request');
    expect(err('name: x\nkind: ws\nphases: [{duration: -1, arrivalRate: 1}]').issues[0]!.path).toMatch(/^phases\[0\]/);
    expect(err('name: x\nkind: ws\nphases: [{duration: 1, arrivalRate: 1}]\nthresholds: ["p99 lt 3"]').issues[0]!.path).toBe('thresholds[0]');
  });

  it('aims at loopback only', () => {
    expect(assertLoopback('http://127.0.0.1:8080').port).toBe('8080');
    expect(assertLoopback('http://[::1]:1').hostname).toBe('[::1]');
    expect(assertLoopback('http://localhost:1').hostname).toBe('localhost');
    for (const bad of ['http://10.0.0.1:80', 'http://example.com', 'http://192.168.1.2', 'ftp://127.0.0.1', 'nonsense']) {
      expect(() => assertLoopback(bad), bad).toThrow(ProfileError);
    }
  });

  it('arrives as many listeners as the arrival rate integrates to', () => {
    fc.assert(
      fc.property(fc.array(fc.record({ duration: fc.integer({ min: 1, max: 5 }), arrivalRate: fc.integer({ min: 0, max: 200 }) }), { minLength: 1, maxLength: 4 }), (phases) => {
        const expected = phases.reduce((s, p) => s + p.duration * p.arrivalRate, 0);
        const times = arrivalTimes(phases, 1e9);
        expect(Math.abs(times.length - expected)).toBeLessThanOrEqual(1);
        expect([...times].sort((a, b) => a - b)).toEqual(times);
      }),
    );
    expect(arrivalTimes([{ duration: 2, arrivalRate: 0, rampTo: 100 }], 1e9).length).toBe(100);
  });

  it('backs off with full jitter within [0, min(cap, base·2^(n−1))), and not at all in a storm', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 30 }), fc.double({ min: 0, max: 0.999999, noNaN: true }), (n, u) => {
        const d = backoffDelay('jitter', 500, 20_000, n, u);
        expect(d).toBeGreaterThanOrEqual(0);
        expect(d).toBeLessThan(Math.min(20_000, 500 * 2 ** (n - 1)) + 1e-9);
        expect(backoffDelay('storm', 500, 20_000, n, u)).toBe(0);
      }),
    );
    // uniform: the mean of many draws sits near half the window
    const draws = Array.from({ length: 2000 }, (_, i) => backoffDelay('jitter', 1000, 1000, 1, (i + 0.5) / 2000));
    expect(draws.reduce((a, b) => a + b, 0) / draws.length).toBeCloseTo(500, 0);
  });

  it('judges thresholds by the worst kind they cover', () => {
    const k = (kind: KindSummary['kind'], p99: number, availability: number): KindSummary => ({ kind, requests: 10, ok: 10, refused: {}, errors: {}, timeouts: 0, availability, rps: 1, p50: 1, p90: 1, p99, p999: p99, max: p99 });
    const kinds = [k('join', 300, 0.9), k('ws_connect', 50, 1)];
    expect(evaluateThresholds(kinds, ['p99<200', 'ws_connect.p99<200', 'availability>0.95', 'join.availability>=0.9', 'chunk.p99<1'])).toEqual([
      { threshold: 'p99<200', actual: 300, pass: false },
      { threshold: 'ws_connect.p99<200', actual: 50, pass: true },
      { threshold: 'availability>0.95', actual: 0.9, pass: false },
      { threshold: 'join.availability>=0.9', actual: 0.9, pass: true },
      { threshold: 'chunk.p99<1', actual: null, pass: false },
    ]);
  });
});
