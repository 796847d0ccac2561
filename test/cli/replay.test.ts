import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli, runToEnd } from '../helpers/cli.js';
import { useTempDir } from '../helpers/tmp.js';

describe('stampede replay', () => {
  const outDir = useTempDir('stampede-out-');

  it('--speed max replays the night without a server and writes report.json and report.md', async () => {
    const out = outDir();
    const r = await runToEnd(['replay', '--speed', 'max', '--out', out]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('5/5 facts met');
    const report = JSON.parse(await readFile(join(out, 'report.json'), 'utf8')) as Record<string, unknown> & { series: Record<string, unknown>[]; expectations: Record<string, unknown>[] };
    for (const k of ['scenario', 'seed', 'speed', 'scheduledAt', 'liveAt', 'peakListeners', 'peakAt', 'series', 'expectations', 'fidelity']) expect(report, k).toHaveProperty(k);
    expect(report.speed).toBe('max');
    expect(report.series.length).toBeGreaterThan(180);
    for (const k of ['t', 'listeners', 'realListeners', 'availability', 'offered', 'admitted', 'attack', 'latencyP99Ms']) expect(report.series[0], k).toHaveProperty(k);
    for (const k of ['name', 'expected', 'actual', 'pass', 'source']) expect(report.expectations[0], k).toHaveProperty(k);
    const md = await readFile(join(out, 'report.md'), 'utf8');
    expect(md).toMatch(/\| conversation starts between 20:35 and 20:50 ET \| 20:35–20:50 \| 20:4\d \| ✅ pass \|/);
  });

  it('replays with the server live and real listeners that feel the outage, then publishes the recording', async () => {
    const out = outDir();
    const r = runCli([
      'replay', '--speed', '900', '--port', '0', '--listeners', '30', '--out', out,
      // half an hour on air (2 s of wall time) so real listeners backing off from the storm still get in on a busy machine
      '--set', 'event.replayUntil=21:20', '--set', 'assumptions.hostEnd.afterMinutesLive=30',
    ]);
    const [, url] = await r.waitFor(/server live on (http:\/\/127\.0\.0\.1:\d+)/);
    await r.waitFor(/30 real listeners/);
    const metrics = await (await fetch(`${url}/metrics`)).text();
    expect(metrics).toMatch(/^stampede_sim_time_seconds \d/m);
    const { code } = await r.exited;
    expect(code, r.stderr()).toBe(0);
    const report = JSON.parse(await readFile(join(out, 'report.json'), 'utf8')) as { series: { realListeners: number; realAvailability: number | null; phase: string }[]; expectations: { name: string; actual: string; pass: boolean }[] };
    expect(report.expectations.find((e) => e.name.includes('recording'))).toMatchObject({ actual: 'published and complete', pass: true });
    expect(Math.max(...report.series.map((s) => s.realListeners))).toBeGreaterThan(0);
    // while the model says the join path fails, real clients are refused too
    const failingReal = report.series.filter((s) => s.phase === 'failing' && s.realAvailability !== null).map((s) => s.realAvailability!);
    expect(failingReal.length).toBeGreaterThan(0);
    expect(Math.min(...failingReal)).toBeLessThan(0.5);
  });

  it('fails on a scenario mistake with the field named, and writes nothing', async () => {
    const out = outDir();
    const r = await runToEnd(['replay', '--speed', 'max', '--out', out, '--set', 'assumptions.capacity.collapse=lots']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('assumptions.capacity.collapse');
    expect(await readdir(out)).toEqual([]);
  });

  it('compare says which account fits the facts better', async () => {
    const out = outDir();
    const r = await runToEnd(['compare', '--out', out]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/Best fit to the facts: /);
    const c = JSON.parse(await readFile(join(out, 'compare.json'), 'utf8')) as { ranking: { fidelity: number; meanError: number }[] };
    expect(c.ranking).toHaveLength(2);
    expect(c.ranking[0]!.fidelity).toBeGreaterThanOrEqual(c.ranking[1]!.fidelity);
  });
});
