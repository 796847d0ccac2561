import { describe, expect, it } from 'vitest';
import { createRng } from '../../src/sim/rng.js';
import { Ledger } from '../../bench/lib/entries.js';
import { estimate, pairedRatio, ratio, shuffled, verdict } from '../../bench/lib/stats.js';

describe('bench statistics', () => {
  it('reports the median of the rounds with an interval around it', () => {
    const e = estimate([10, 11, 9, 10.5, 9.5, 10.2, 9.8, 10.1, 9.9, 10.4]);
    expect(e.median).toBeCloseTo(10.05, 10);
    expect(e.n).toBe(10);
    expect(e.lo).toBeLessThanOrEqual(e.median);
    expect(e.hi).toBeGreaterThanOrEqual(e.median);
    expect(e.lo).toBeGreaterThanOrEqual(9);
    expect(e.hi).toBeLessThanOrEqual(11);
  });

  it('gives a wider interval for noisier rounds, and none for a single round', () => {
    const tight = estimate([100, 101, 99, 100, 100, 101, 99, 100, 100, 100]);
    const loose = estimate([60, 140, 80, 120, 100, 90, 110, 70, 130, 100]);
    expect(loose.hi - loose.lo).toBeGreaterThan(5 * (tight.hi - tight.lo));
    expect(estimate([42])).toEqual({ median: 42, lo: 42, hi: 42, n: 1 });
  });

  it('is reproducible: the same rounds give the same interval', () => {
    const xs = [3, 1, 4, 1, 5, 9, 2, 6, 5, 3];
    expect(estimate(xs)).toEqual(estimate(xs));
  });

  it('tells 0.9× and 1.1× from 1 when the rounds agree, and not when they scatter', () => {
    const rng = createRng(7);
    const noisy = (centre: number, spread: number) => Array.from({ length: 10 }, () => centre * (1 + spread * (rng.next() - 0.5)));
    const base = noisy(100, 0.04);
    const faster = ratio(noisy(110, 0.04), base);
    const slower = ratio(noisy(90, 0.04), base);
    expect(faster.median).toBeGreaterThan(1.05);
    expect(verdict(faster)).toBe('higher');
    expect(verdict(slower)).toBe('lower');
    const scattered = ratio(noisy(103, 0.6), noisy(100, 0.6));
    expect(verdict(scattered)).toBe('not distinguishable');
    expect(scattered.lo).toBeLessThan(1);
    expect(scattered.hi).toBeGreaterThan(1);
  });

  it('resamples side-by-side rounds as pairs, so drift shared by both sides cancels', () => {
    // both contestants slow down together over the run; A stays 5% ahead in every round
    const drift = [100, 90, 80, 70, 60, 50, 45, 40, 35, 30];
    const a = drift.map((d) => d * 1.05);
    const paired = ratio(a, drift);
    expect(paired.lo).toBeCloseTo(1.05, 6);
    expect(paired.hi).toBeCloseTo(1.05, 6);
    const unpaired = ratio(a, drift.slice(0, 9));
    expect(verdict(unpaired)).toBe('not distinguishable');
  });

  it('resamples rounds grouped by process over processes first, so the interval holds a known spread between two processes', () => {
    // two processes of one build, 5% apart (the machine shows up to 18%), rounds alternating between them with ±3% of scatter
    const rng = createRng(5);
    const groups = Array.from({ length: 20 }, (_, i) => i % 2);
    const xs = groups.map((g) => (g ? 1.05 : 1) * (1 + 0.06 * (rng.next() - 0.5)));
    const own = [0, 1].map((g) => estimate(xs.filter((_, i) => groups[i] === g)).median);
    const flat = estimate(xs);
    const nested = estimate(xs, 1, groups);
    expect(nested.median).toBe(flat.median);
    // rounds alone: twenty of them pin the pooled median down, between the two processes, covering neither
    expect(flat.lo).toBeGreaterThan(Math.min(...own));
    expect(flat.hi).toBeLessThan(Math.max(...own));
    // over processes, then rounds: either process may be the typical one, so the interval reaches both
    expect(nested.lo).toBeLessThanOrEqual(Math.min(...own));
    expect(nested.hi).toBeGreaterThanOrEqual(Math.max(...own));
    // per-round ratios grouped the same way; one group (or none) is the plain bootstrap over rounds
    const b = xs.map(() => 1);
    expect(pairedRatio(xs, b, 1, groups)).toEqual(nested);
    expect(estimate(xs, 1, groups.map(() => 0))).toEqual(flat);
  });

  it('shuffles deterministically and keeps every element', () => {
    const a = shuffled([1, 2, 3, 4, 5], createRng(3).next);
    expect([...a].sort()).toEqual([1, 2, 3, 4, 5]);
    expect(shuffled([1, 2, 3, 4, 5], createRng(3).next)).toEqual(a);
  });
});

describe('bench ledger', () => {
  const a = [110, 111, 109, 112, 110, 108, 111, 110, 109, 112];
  const b = [100, 101, 99, 100, 102, 98, 100, 101, 99, 100];

  it('gives every figure, baseline and ratio an interval, and judges a target on the ratio', () => {
    const l = new Ledger(1);
    const e = l.compare({ part: 'p', name: 'n', unit: 'x/s', better: 'higher', a, baselineName: 'base', b, target: { text: '≥ 1.05×', test: (r) => r.median >= 1.05 } });
    expect(e.ratio).toBeCloseTo(e.figure / e.baseline, 10);
    expect(e.figureCI[0]).toBeLessThanOrEqual(e.figure);
    expect(e.figureCI[1]).toBeGreaterThanOrEqual(e.figure);
    expect(e.ratioCI![0]).toBeGreaterThan(1);
    expect(e.verdict).toBe('higher');
    expect(e.target).toEqual({ text: '≥ 1.05×', met: true });
    expect(e.rounds).toBe(10);
  });

  it('leaves a flagged comparison out of the ratios and its target unjudged, but keeps its figures', () => {
    const l = new Ledger(1);
    const e = l.compare({ part: 'p', name: 'n', unit: 'x/s', better: 'higher', a, baselineName: 'base', b, excluded: 'socketio: connected 2,597 of 5,000', target: { text: '≥ 2×', test: () => true } });
    expect(e.ratio).toBeNull();
    expect(e.ratioCI).toBeNull();
    expect(e.verdict).toBe('excluded');
    expect(e.excluded).toMatch(/2,597 of 5,000/);
    expect(e.target?.met).toBeNull();
    expect(e.baseline).toBeCloseTo(100, 6);
  });

  it('meets a fixed limit only when the whole interval is on the right side of it', () => {
    const l = new Ledger(1);
    expect(l.against({ part: 'm', name: 'rss', unit: 'KiB', better: 'lower', a: [6, 7, 6.5, 7.2, 6.8], limit: 8, limitName: '8 KiB' }).target?.met).toBe(true);
    expect(l.against({ part: 'm', name: 'rss', unit: 'KiB', better: 'lower', a: [6, 7, 9, 7.5, 8.5, 6], limit: 8, limitName: '8 KiB' }).target?.met).toBe(false);
  });
});

describe('bench ledger with missing values', () => {
  it('gives no ratio, and says why, when a baseline round measured 0', () => {
    const e = new Ledger(1).compare({ part: 'p', name: 'n', unit: 'µs', better: 'lower', a: [1, 2, 3], baselineName: 'floor', b: [0, 1, 0] });
    expect(e.ratio).toBeNull();
    expect(e.excluded).toMatch(/floor measured 0/);
    expect(JSON.parse(JSON.stringify(e)).figureCI).toEqual(e.figureCI);
  });

  it('leaves rounds with no value out of a fixed-target figure and does not judge it', () => {
    const e = new Ledger(1).against({ part: 'o', name: 'p99', unit: 'ms', better: 'lower', a: [200, null, 300], limit: 1000, limitName: '1 s' });
    expect(e.rounds).toBe(2);
    expect(e.excluded).toMatch(/1 of 3 rounds had no value/);
    expect(e.target?.met).toBeNull();
  });
});
