import { describe, expect, it } from 'vitest';
import { formatProgress, ReplayProgress, type ProgressFields } from '../../src/cli/replay-progress.js';

const fields = (done: number): ProgressFields => ({ clock: '20:25 ET', done, phase: 'failing', listeners: 543_470, availability: 0.113, offered: 4506, real: { in: 41, of: 200, admitted: 41, attempts: 668 } });

function sink(isTTY: boolean, columns = 80) {
  const writes: string[] = [];
  return { out: { isTTY, columns, write: (s: string) => writes.push(s) }, writes };
}

describe('the replay progress line', () => {
  it('fits the terminal, dropping the least important figures first and keeping a bar of simulated time', () => {
    for (const width of [30, 40, 60, 80, 100, 160]) {
      const line = formatProgress(fields(0.3), width, true);
      expect(line.length, `${width}: ${line}`).toBeLessThanOrEqual(width);
      expect(line.startsWith('20:25 ET')).toBe(true);
    }
    expect(formatProgress(fields(0.3), 80, true)).toMatch(/^20:25 ET █+[▏▎▍▌▋▊▉]?·+ +30%  failing · 543k listening · joins 11% ok · 4.5k\/s offered/);
    expect(formatProgress(fields(0.3), 160, true)).toContain('real 41/200 in · 41/668 real joins ok');
    expect(formatProgress(fields(1), 80, true)).toMatch(/█{8,} 100%/);
  });

  it('on a terminal redraws in place at most every 100 ms of wall time, and draws the last state at the end', () => {
    const { out, writes } = sink(true, 72);
    const p = new ReplayProgress(out);
    p.begin();
    // 10 s of wall time, a step every millisecond
    for (let ms = 0; ms < 10_000; ms++) p.update(fields(ms / 10_000), ms * 1000, ms);
    p.done();
    expect(writes.length).toBeLessThanOrEqual(10_000 / 100 + 2);
    expect(writes.length).toBeGreaterThan(50);
    for (const w of writes.slice(0, -1)) {
      expect(w.startsWith('\r')).toBe(true);
      expect(w.length - 1).toBeLessThanOrEqual(71);
    }
    expect(writes.at(-2)).toContain('99%');
    expect(writes.at(-1)).toBe('\n');
  });

  it('piped, prints one line per 5 simulated minutes, none before begin() and nothing when quiet', () => {
    const { out, writes } = sink(false);
    const p = new ReplayProgress(out);
    const from = Date.UTC(2024, 7, 12, 23, 45);
    for (let s = 0; s < 190 * 60; s++) {
      p.update(fields(s / (190 * 60)), from + s * 1000, s);
      if (s === 100) {
        expect(writes).toEqual([]);
        p.begin();
      }
    }
    p.done();
    expect(writes).toHaveLength(38);
    expect(writes.every((w) => w.endsWith('\n') && !w.includes('\r') && !w.includes('█'))).toBe(true);
    const quiet = sink(true);
    const q = new ReplayProgress(quiet.out, { quiet: true });
    q.begin();
    for (let s = 0; s < 1000; s++) q.update(fields(0.5), s * 1000, s * 200);
    q.done();
    expect(quiet.writes).toEqual([]);
  });
});
