import { execFile } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { useTempDir } from '../helpers/tmp.js';

const RUN = fileURLToPath(new URL('../../dist/bench/run.js', import.meta.url));

interface Entry {
  part: string;
  name: string;
  figure: number;
  baseline: number;
  ratio: number;
  unit: string;
  better: string;
}

describe('npm run bench', () => {
  const outDir = useTempDir('stampede-bench-');

  it('runs every part end to end (tiny sizes) and writes JSON with a baseline and a ratio for each figure', async () => {
    const out = outDir();
    // the same code as a real run, shrunk: 50 listeners, half-second windows, one round, 1 s of autocannon
    const env = { ...process.env, BENCH_OUT: out, BENCH_SIZES: '50', BENCH_MEASURE_MS: '500', BENCH_WARMUP_MS: '300', BENCH_FANOUT_ROUNDS: '1', BENCH_HTTP_ROUNDS: '1', BENCH_HTTP_SECONDS: '1', BENCH_METRICS_LISTENERS: '50' };
    await promisify(execFile)(process.execPath, [RUN], { env, timeout: 90_000 });
    expect((await readdir(out)).sort()).toEqual(['latest.json', 'latest.md']);
    const result = JSON.parse(await readFile(join(out, 'latest.json'), 'utf8')) as { entries: Entry[] };
    const parts = new Set(result.entries.map((e) => e.part));
    expect([...parts].sort()).toEqual(['fanout', 'join', 'metrics', 'replay']);
    for (const e of result.entries) {
      // throughput and CPU figures are never zero; a loopback latency may round to 0 ms
      const least = e.unit === 'ms' ? 0 : Number.MIN_VALUE;
      expect(e.figure, e.name).toBeGreaterThanOrEqual(least);
      expect(e.baseline, e.name).toBeGreaterThanOrEqual(least);
      if (e.baseline > 0) expect(e.ratio, e.name).toBeCloseTo(e.figure / e.baseline, 2);
    }
    const names = result.entries.map((e) => e.name).join('\n');
    expect(names).toMatch(/chunks per server CPU-second, 50 listeners, vs bare ws/);
    expect(names).toMatch(/chunks per server CPU-second, 50 listeners, vs Socket.IO/);
    expect(names).toMatch(/join: requests\/s vs bare node:http/);
    expect(names).toMatch(/space details: requests\/s vs bare node:http/);
    expect(names).toMatch(/peak 13M vs 1.3M listeners/);
    // every listener got its audio from each server during the window
    const delivered = result.entries.find((e) => e.name.startsWith('delivered chunks/s, 50 listeners') && e.name.endsWith('vs bare ws'))!;
    expect(delivered.figure).toBeGreaterThan(300); // 50 listeners × 10 chunks/s = 500
  }, 120_000);
});
