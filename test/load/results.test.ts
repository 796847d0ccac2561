import { describe, expect, it } from 'vitest';
import { KindStats } from '../../src/load/results.js';

describe('KindStats', () => {
  it('corrects latency for coordinated omission when the intended interval is known, and counts only real requests', () => {
    const plain = new KindStats('details');
    const corrected = new KindStats('details');
    // 99 quick answers and one 2-second stall, on a connection meant to send every 10 ms
    for (let i = 0; i < 99; i++) {
      plain.record('ok', 1);
      corrected.record('ok', 1, undefined, 10);
    }
    plain.record('ok', 2_000);
    corrected.record('ok', 2_000, undefined, 10);
    // without correction the stall is one sample in a hundred; with it, the ~200 requests the stall
    // held back are there too, so most of the distribution is slow
    expect(plain.latency.getValueAtPercentile(90)).toBeLessThan(1_100); // µs
    expect(corrected.latency.getValueAtPercentile(90)).toBeGreaterThan(1_000_000);
    expect(corrected.latency.totalCount).toBeGreaterThan(250);
    expect(corrected.ok).toBe(100);
    expect(plain.ok).toBe(100);
  });

  it('adds load workers\' deltas exactly: the merged tally is the one a single process would have recorded', () => {
    const single = new KindStats('join');
    const workers = [new KindStats('join'), new KindStats('join'), new KindStats('join')];
    const merged = new KindStats('join');
    // three differently shaped workers (one fast, one slow, one bimodal), reporting twice each
    for (let round = 0; round < 2; round++) {
      for (let i = 0; i < 3_000; i++) {
        const w = i % 3;
        const ms = w === 0 ? 1 + (i % 17) / 10 : w === 1 ? 40 + (i % 101) : i % 2 ? 2 : 900 + i / 10;
        const outcome = i % 97 === 0 ? 'refused' : i % 89 === 0 ? 'timeout' : 'ok';
        single.record(outcome, ms, outcome === 'refused' ? '503' : undefined);
        workers[w]!.record(outcome, ms, outcome === 'refused' ? '503' : undefined);
      }
      for (const w of workers) merged.absorb(w.takeDelta());
    }
    expect(merged.latency.totalCount).toBe(single.latency.totalCount);
    for (const p of [1, 25, 50, 90, 95, 99, 99.9, 100]) expect(merged.percentile(p), `p${p}`).toBe(single.percentile(p));
    expect([merged.ok, merged.timeouts, merged.refused, merged.requests]).toEqual([single.ok, single.timeouts, single.refused, single.requests]);
    // averaging the workers' p99s (what an exact merge must never do) would be far off here
    const averaged = workers.reduce((a, w) => a + w.percentile(99)!, 0) / 3;
    expect(Math.abs(averaged - single.percentile(99)!)).toBeGreaterThan(100);
    // a delta with nothing new adds nothing
    merged.absorb(workers[0]!.takeDelta());
    expect(merged.requests).toBe(single.requests);
  });
});
