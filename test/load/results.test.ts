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
});
