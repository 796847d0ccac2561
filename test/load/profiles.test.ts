import { readdir } from 'node:fs/promises';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { arrivalTimes, assertLoopback, backoffDelay, formatActual, judge, KindStats, loadPlan, parsePlan, parseProfile, parseThreshold, ProfileError, substituteEnv } from '../../src/load/index.js';

describe('load profiles', () => {
  it('loads every shipped profile', async () => {
    const files = (await readdir('scenarios')).filter((f) => f.startsWith('load-'));
    expect(files.length).toBeGreaterThanOrEqual(7);
    for (const f of files) expect((await loadPlan(`scenarios/${f}`)).name, f).toBe(f.replace(/^load-|\.yaml$/g, ''));
  });

  it('every shipped profile checks what its name promises, and the night runs its planes at once', async () => {
    const plans = new Map<string, Awaited<ReturnType<typeof loadPlan>>>();
    for (const f of (await readdir('scenarios')).filter((x) => x.startsWith('load-'))) plans.set(f.replace(/^load-|\.yaml$/g, ''), await loadPlan(`scenarios/${f}`));
    const all = (name: string): string[] => {
      const p = plans.get(name)!;
      return [...p.thresholds, ...p.scenarios.flatMap((s) => s.thresholds)].map((t) => (typeof t === 'string' ? t : t.threshold));
    };
    // a join storm is survived when joins are admitted: availability, not just latency and errors
    expect(all('join-storm')).toEqual(expect.arrayContaining(['join.availability>0.99', 'errors<1']));
    expect(all('ws-listeners')).toEqual(expect.arrayContaining(['join.availability>0.99', 'audio.p99<250']));
    expect(all('ws-reconnect-storm').some((t) => t.startsWith('ws_connect.availability'))).toBe(true);
    for (const name of ['details-poll', 'chunk-fetch', 'metrics-scrape']) expect(all(name).some((t) => t.startsWith('availability>')), name).toBe(true);
    const night = plans.get('night')!;
    expect(night.scenarios.map((s) => [s.name, s.kind, s.executor])).toEqual([
      ['join_storm', 'http', 'arrival-rate'],
      ['polling', 'http', 'constant-vus'],
      ['listeners', 'ws', 'constant-vus'],
    ]);
    for (const s of night.scenarios) expect(s.thresholds.length, s.name).toBeGreaterThan(0);
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

  it('judges thresholds by the worst kind they cover, and fails when there is nothing to judge', () => {
    const stats = (kind: 'join' | 'ws_connect' | 'audio', latencies: number[], failed = 0): KindStats => {
      const s = new KindStats(kind);
      for (const ms of latencies) s.record('ok', ms);
      for (let i = 0; i < failed; i++) s.record('error', 1, 'HTTP_500');
      return s;
    };
    // join: 90 answers of 1..90 ms and 10 errors; ws_connect: 50 answers of 5 ms; audio: nothing received
    const measured = [stats('join', Array.from({ length: 90 }, (_, i) => i + 1), 10), stats('ws_connect', Array(50).fill(5)), stats('audio', [])].map((s) => s.measured(10));
    const run = (t: string) => judge(parseThreshold(t), measured);
    // the 95th of 100 sorted values is 85 ms (HDR keeps 3 significant digits)
    expect(run('p95<200')).toMatchObject({ threshold: 'p95<200', pass: true });
    expect(run('p95<200').actual).toBeCloseTo(85, 0);
    expect(run('p(95)<50')).toMatchObject({ pass: false });
    expect(run('p(95)<50').actual).toBe(run('p95<200').actual);
    expect(run('ws_connect.p99<10')).toMatchObject({ actual: 5, pass: true });
    expect(run('availability>0.95')).toMatchObject({ actual: 0.9, pass: false });
    expect(run('join.error_rate<=0.1')).toMatchObject({ actual: 0.1, pass: true });
    expect(run('join.rps>=10')).toMatchObject({ actual: 10, pass: true });
    expect(run('errors<1')).toMatchObject({ actual: 10, pass: false });
    // "no data" fails: no audio arrived, no chunk was requested
    expect(run('audio.p99<250')).toEqual({ threshold: 'audio.p99<250', actual: null, pass: false });
    expect(run('chunk.p99<1')).toEqual({ threshold: 'chunk.p99<1', actual: null, pass: false });
  });

  it('reads any percentile in both spellings, and refuses what it cannot read with the grammar', () => {
    expect(parseThreshold('p95<200').metric).toEqual({ name: 'percentile', p: 95 });
    expect(parseThreshold('p(95) < 200').metric).toEqual({ name: 'percentile', p: 95 });
    expect(parseThreshold('p999<1').metric).toEqual({ name: 'percentile', p: 99.9 });
    expect(parseThreshold('p(99.99)<1').metric).toEqual({ name: 'percentile', p: 99.99 });
    expect(parseThreshold('join.p99.9<1')).toMatchObject({ kind: 'join', metric: { name: 'percentile', p: 99.9 } });
    expect(parseThreshold({ threshold: 'availability>0.9', abortOnFail: true, delayAbortEval: 5 })).toMatchObject({ abortOnFail: true, delayAbortEvalS: 5 });
    for (const bad of ['p0<1', 'p(101)<1', 'latency<1', 'p95 lt 3', 'p95<', '<5']) expect(() => parseThreshold(bad), bad).toThrow(/bad threshold .*expected \[kind\.\]metric op value/);
  });

  it('prints actuals the way a person reads them', () => {
    expect(formatActual(parseThreshold('availability>0.9'), 0.21530249110320285)).toBe('21.53% (0.2153)');
    expect(formatActual(parseThreshold('p95<1'), 12.3456)).toBe('12.35 ms');
    expect(formatActual(parseThreshold('errors<1'), 3)).toBe('3');
    expect(formatActual(parseThreshold('rps>1'), 99.95)).toBe('100/s');
    expect(formatActual(parseThreshold('p95<1'), null)).toBe('no data');
  });

  it('never reports a percentile above the largest latency measured', () => {
    fc.assert(
      fc.property(fc.array(fc.double({ min: 0.001, max: 60_000, noNaN: true }), { minLength: 1, maxLength: 200 }), (values) => {
        const s = new KindStats('details');
        for (const v of values) s.record('ok', v);
        const max = s.measured(1).max()!;
        for (const p of [50, 90, 95, 99, 99.9, 99.99, 100]) expect(s.percentile(p)!).toBeLessThanOrEqual(max);
      }),
    );
    const s = new KindStats('details');
    s.record('ok', 3003.42);
    expect(s.percentile(99.9)).toBe(3003.42);
  });

  it('substitutes the environment in a profile, with defaults, and names a variable that is missing', () => {
    expect(substituteEnv('rate: ${RATE}\nd: ${D:-5}\nlit: $${X}', { RATE: '40' })).toEqual({ text: 'rate: 40\nd: 5\nlit: ${X}', missing: [] });
    const text = 'name: x\nkind: http\nrequest: details\nphases: [{duration: ${SECONDS:-2}, arrivalRate: ${RATE}}]';
    expect(parseProfile(text, 'p.yaml', { RATE: '25' }).phases).toEqual([{ duration: 2, arrivalRate: 25 }]);
    expect(() => parseProfile(text, 'p.yaml', {})).toThrow(/environment variable RATE is not set/);
  });

  it('reads several named scenarios from one file, each with its executor, start time and tags', () => {
    const plan = parsePlan(
      [
        'name: night',
        'thresholds: ["p95<500"]',
        'scenarios:',
        '  joins: {kind: http, request: join, phases: [{duration: 2, arrivalRate: 10}], tags: {plane: join}, thresholds: ["availability>0.9"]}',
        '  polling: {kind: http, request: details, executor: constant-vus, vus: 5, duration: 3, startTime: 1}',
        '  held: {kind: ws, executor: constant-vus, vus: 20, duration: 3}',
      ].join('\n'),
      'night.yaml',
    );
    expect(plan.scenarios.map((s) => [s.name, s.kind, s.executor, s.startTime])).toEqual([
      ['joins', 'http', 'arrival-rate', 0],
      ['polling', 'http', 'constant-vus', 1],
      ['held', 'ws', 'constant-vus', 0],
    ]);
    expect(plan.scenarios[0]!.tags).toEqual({ plane: 'join' });
    expect(plan.scenarios[1]!.phases).toEqual([{ duration: 3, arrivalRate: 0 }]);
    expect(plan.thresholds).toEqual(['p95<500']);
    const err = (text: string): string => {
      try {
        parsePlan(text, 'bad.yaml');
      } catch (e) {
        return (e as Error).message;
      }
      return 'no error';
    };
    expect(err('name: n\nscenarios:\n  a: {kind: http, request: join, executor: constant-vus, duration: 3}')).toContain('scenarios.a.vus: a constant-vus scenario needs vus');
    expect(err('name: n\nscenarios:\n  a: {kind: http, request: join}')).toContain('scenarios.a.phases: an arrival-rate scenario needs phases');
    expect(err('name: n\nscenarios: {}')).toContain('at least one scenario');
  });
});
