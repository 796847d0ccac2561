import { median, quantile } from 'simple-statistics';
import { createRng } from '../../src/sim/rng.js';

/** A figure as the bench reports it: the median of its rounds and a bootstrap 95% interval for that median. */
export interface Estimate {
  median: number;
  lo: number;
  hi: number;
  n: number;
}

const RESAMPLES = 4_000;

/** One bootstrap resample of `n` indices, drawn with replacement. */
function resample(n: number, next: () => number, into: Uint32Array): void {
  for (let i = 0; i < n; i++) into[i] = Math.floor(next() * n);
}

function pick(xs: readonly number[], idx: Uint32Array, into: number[]): number[] {
  for (let i = 0; i < idx.length; i++) into[i] = xs[idx[i]!]!;
  return into;
}

function interval(stats: number[], point: number, n: number): Estimate {
  return { median: point, lo: quantile(stats, 0.025), hi: quantile(stats, 0.975), n };
}

/**
 * The median of the rounds with a percentile-bootstrap 95% interval (seeded, so a run's JSON is
 * reproducible from its rounds). With fewer than two rounds the interval is the single value.
 *
 * `groups[i]` names the unit round i came from (the server process it was measured on). With two or
 * more groups the bootstrap is hierarchical: each resample draws the groups with replacement, then
 * rounds with replacement within each drawn group, so the interval holds the spread between groups
 * (two processes of one build differ by up to 1.18× on this machine), not only between rounds.
 */
export function estimate(xs: readonly number[], seed = 1, groups?: readonly number[]): Estimate {
  if (xs.length === 0) return { median: NaN, lo: NaN, hi: NaN, n: 0 };
  const point = median([...xs]);
  if (xs.length < 2) return { median: point, lo: point, hi: point, n: xs.length };
  const next = createRng(seed).next;
  const byGroup = groups ? groupsOf(xs, groups) : [];
  const stats: number[] = [];
  if (byGroup.length > 1) {
    const buf: number[] = [];
    for (let b = 0; b < RESAMPLES; b++) {
      buf.length = 0;
      for (let g = 0; g < byGroup.length; g++) {
        const members = byGroup[Math.floor(next() * byGroup.length)]!;
        for (let i = 0; i < members.length; i++) buf.push(members[Math.floor(next() * members.length)]!);
      }
      stats.push(median(buf));
    }
    return interval(stats, point, xs.length);
  }
  const idx = new Uint32Array(xs.length);
  const buf: number[] = new Array<number>(xs.length);
  for (let b = 0; b < RESAMPLES; b++) {
    resample(xs.length, next, idx);
    stats.push(median(pick(xs, idx, buf)));
  }
  return interval(stats, point, xs.length);
}

/** The values of each group, in the order the groups first appear. */
function groupsOf(xs: readonly number[], groups: readonly number[]): number[][] {
  const by = new Map<number, number[]>();
  xs.forEach((x, i) => {
    const g = groups[i] ?? 0;
    by.set(g, [...(by.get(g) ?? []), x]);
  });
  return [...by.values()];
}

/**
 * The ratio of two medians, median(a) / median(b), with a bootstrap 95% interval. Rounds of a and b
 * taken side by side (same count, interleaved in time) are resampled as pairs, so drift on a shared
 * machine that moves both sides of a round cancels; otherwise each side is resampled on its own.
 */
export function ratio(a: readonly number[], b: readonly number[], seed = 1): Estimate {
  if (a.length === 0 || b.length === 0) return { median: NaN, lo: NaN, hi: NaN, n: 0 };
  const point = median([...a]) / median([...b]);
  const n = Math.min(a.length, b.length);
  if (a.length < 2 || b.length < 2) return { median: point, lo: point, hi: point, n };
  const next = createRng(seed).next;
  const paired = a.length === b.length;
  const ia = new Uint32Array(a.length);
  const ib = paired ? ia : new Uint32Array(b.length);
  const bufA: number[] = new Array<number>(a.length);
  const bufB: number[] = new Array<number>(b.length);
  const stats: number[] = [];
  for (let k = 0; k < RESAMPLES; k++) {
    resample(a.length, next, ia);
    if (!paired) resample(b.length, next, ib);
    stats.push(median(pick(a, ia, bufA)) / median(pick(b, ib, bufB)));
  }
  return interval(stats, point, n);
}

/**
 * The median of per-pair ratios a[i] / b[i], with a bootstrap 95% interval over the pairs. For rounds
 * taken as adjacent windows in a palindromic order (A B … B A), where each pair saw the same machine:
 * a slow spell moves both sides of a pair, so it moves the pair's ratio far less than either side.
 * With `groups` (the processes each pair was measured on) the bootstrap is hierarchical (see estimate).
 */
export function pairedRatio(a: readonly number[], b: readonly number[], seed = 1, groups?: readonly number[]): Estimate {
  const n = Math.min(a.length, b.length);
  const rs = Array.from({ length: n }, (_, i) => a[i]! / b[i]!);
  return estimate(rs, seed, groups);
}

/** Whether an interval for a ratio lies wholly above or below 1: a difference the rounds support. */
export function verdict(r: Estimate): 'higher' | 'lower' | 'not distinguishable' {
  if (r.lo > 1) return 'higher';
  if (r.hi < 1) return 'lower';
  return 'not distinguishable';
}

/** A seeded shuffle (Fisher–Yates), for the order of contestants within a round. */
export function shuffled<T>(xs: readonly T[], next: () => number): T[] {
  const out = [...xs];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(next() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

/** One case's window in a palindromic round: its place in the round's order, and what it measured. */
export interface Window<W> {
  position: number;
  w: W;
}

/**
 * One round of adjacent windows: the cases in a seeded shuffled order and then in the reverse order
 * (A B C C B A), so a linear drift of the machine within the round falls equally on every case. Each
 * case's two windows, in the order taken. The join and /metrics parts compare in rounds like this one.
 */
export async function palindrome<C, W>(cases: readonly C[], next: () => number, window: (c: C, position: number) => Promise<W>): Promise<Map<C, Window<W>[]>> {
  const order = shuffled(cases, next);
  const got = new Map<C, Window<W>[]>();
  for (const [position, c] of [...order, ...[...order].reverse()].entries()) {
    const w = await window(c, position);
    got.set(c, [...(got.get(c) ?? []), { position, w }]);
  }
  return got;
}
