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

  it('serves the replay live and exits 0 once the night is over (smoke test; createReplay is tested in-process)', async () => {
    const out = outDir();
    const r = runCli(['replay', '--speed', '3600', '--port', '0', '--listeners', '5', '--out', out, '--set', 'event.replayUntil=20:55', '--set', 'assumptions.hostEnd.afterMinutesLive=5']);
    const [, url] = await r.waitFor(/server live on (http:\/\/127\.0\.0\.1:\d+)/);
    await r.waitFor(/5 real listeners/);
    const replay = (await (await fetch(`${url}/api/v1/replay`)).json()) as { replay: { running: boolean; scenario: string } };
    expect(replay.replay).toMatchObject({ running: true, scenario: expect.stringContaining('X Spaces') });
    const { code } = await r.exited;
    expect(code, r.stderr()).toBe(0);
    const report = JSON.parse(await readFile(join(out, 'report.json'), 'utf8')) as { withServer: boolean };
    expect(report.withServer).toBe(true);
  });

  it('fails on a scenario mistake with the field named, and writes nothing', async () => {
    const out = outDir();
    const r = await runToEnd(['replay', '--speed', 'max', '--out', out, '--set', 'assumptions.capacity.collapse=lots']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('assumptions.capacity.collapse');
    expect(await readdir(out)).toEqual([]);
  });

  it('compare says which account fits the facts better, naming each run by its file and overrides', async () => {
    const out = outDir();
    const r = await runToEnd(['compare', '--out', out, '--set', 'assumptions.demand.noise=0.01']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/Best fit to the facts: /);
    const c = JSON.parse(await readFile(join(out, 'compare.json'), 'utf8')) as { ranking: { fidelity: number; meanError: number }[] };
    expect(c.ranking).toHaveLength(2);
    expect(c.ranking[0]!.fidelity).toBeGreaterThanOrEqual(c.ranking[1]!.fidelity);
  });
});
