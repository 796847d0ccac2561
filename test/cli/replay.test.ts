import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { httpAnswers } from '../../src/cluster/index.js';
import type { Report } from '../../src/report/index.js';
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

  it('serves the night live with --workers 2: the real listeners spread over both threads, the facts hold, and the report and /metrics add up exactly', async () => {
    const out = outDir();
    const r = runCli(['replay', '--workers', '2', '--speed', '1200', '--port', '0', '--listeners', '8', '--stay', '--out', out]);
    const [, url] = await r.waitFor(/server live on (http:\/\/127\.0\.0\.1:\d+)/);
    await r.waitFor(/8 real listeners join through the same join path, from 2 load worker threads/);
    const replay = (await (await fetch(`${url}/api/v1/replay`)).json()) as { replay: { running: boolean; scenario: string } };
    expect(replay.replay).toMatchObject({ scenario: expect.stringContaining('X Spaces') });
    // staying after the night: the listeners (and so the workers) have stopped, the server still answers
    await r.waitFor(/The night is over; the server stays up/);
    const report = JSON.parse(await readFile(join(out, 'report.json'), 'utf8')) as Report;
    for (const e of report.expectations) expect(e.pass, `${e.name}: ${e.actual}`).toBe(true);
    expect(report.withServer).toBe(true);
    expect(r.stdout()).toContain(`${report.expectations.length}/${report.expectations.length} facts met`);
    expect(r.stdout()).toMatch(/real listeners: 8 in 2 load worker threads \(counts added, HDR histograms merged\)/);
    const x = report.run!.realListeners!;
    expect(x.workers).toBe(2);
    // every 2nd arrival went to each worker, and each one's listeners got in and heard the host
    expect(x.perWorker).toHaveLength(2);
    for (const w of x.perWorker!) {
      expect(w.joinsAdmitted).toBeGreaterThan(0);
      expect(w.chunks).toBeGreaterThan(0);
    }
    expect(x.perWorker!.reduce((a, w) => a + w.joinsAdmitted, 0)).toBe(x.joins.admitted);
    expect(x.perWorker!.reduce((a, w) => a + w.chunks, 0)).toBe(x.audio.chunks);
    expect(x.audio.p99Ms!).toBeLessThanOrEqual(x.audio.maxMs!);
    // the workers' client metrics, merged onto the replay server's /metrics, count what the report counts
    const metrics = await (await fetch(`${url}/metrics`)).text();
    const value = (series: string): number => Number(new RegExp(`^${series.replace(/[{}]/g, '\\$&')} (\\S+)$`, 'm').exec(metrics)?.[1]);
    expect(value('stampede_client_requests_total{kind="join",outcome="ok"}')).toBe(x.joins.admitted);
    expect(value('stampede_client_audio_delay_seconds_count')).toBe(x.audio.chunks);
    expect(value('stampede_client_ws_open')).toBe(0);
    expect(await readFile(join(out, 'report.md'), 'utf8')).toMatch(/- real listeners: 8 in 2 load worker threads .* — worker 1: \d+ joins admitted, [\d,]+ chunks; worker 2: /);
    r.child.kill('SIGINT');
    expect((await r.exited).code, r.stderr()).toBe(0);
    expect(await httpAnswers(`${url}/healthz`)).toBe(false);
  }, 60_000);

  it("a night told in another time zone is printed in that zone: the progress lines, GET /api/v1/replay and the page's clock", async () => {
    const out = outDir();
    // the same night, as if it had happened in London (BST): 19:45 there is 14:45 in New York
    const file = join(out, 'london.yaml');
    await writeFile(file, (await readFile('scenarios/x-spaces-2024-08-12.yaml', 'utf8')).replace('timeZone: America/New_York', 'timeZone: Europe/London'));
    const r = runCli(['replay', file, '--speed', 'max', '--port', '0', '--listeners', '1', '--stay', '--out', join(out, 'run')]);
    const [, url] = await r.waitFor(/server live on (http:\/\/127\.0\.0\.1:\d+)/);
    await r.waitFor(/The night is over; the server stays up/);
    // piped: one progress line per 5 simulated minutes, each with the local clock and its zone
    expect(r.stdout()).toMatch(/^19:45 GMT\+1 /m);
    expect(r.stdout()).toMatch(/^22:55 GMT\+1 /m);
    expect(r.stdout()).not.toMatch(/^\d\d:\d\d ET /m);
    const { replay } = (await (await fetch(`${url}/api/v1/replay`)).json()) as { replay: { simTime: string; timeZone: string } };
    expect(replay.timeZone).toBe('Europe/London');
    // the listener page prints what the server said in the zone the server named (before: New York's clock, "ET")
    const page = await (await fetch(`${url}/`)).text();
    const source = /function simClock\([^)]*\) \{[^\n]*(?:\n  [^\n]*)*\n?\}/.exec(page)![0];
    const simClock = new Function(`return (${source});`)() as (iso: string, zone?: string) => string;
    expect(simClock(replay.simTime, replay.timeZone)).toBe('22:55 GMT+1');
    r.child.kill('SIGINT');
    expect((await r.exited).code, r.stderr()).toBe(0);
  }, 60_000);

  it('--workers is checked: at most 64, and not more than the real listeners', async () => {
    for (const [args, says] of [
      [['--workers', '65'], /at most 64 workers/],
      [['--workers', '3', '--listeners', '2', '--port', '0'], /--workers 3 needs at least 3 real listeners \(--listeners 2\)/],
    ] as const) {
      const r = await runToEnd(['replay', ...args]);
      expect(r.code, r.stdout).not.toBe(0);
      expect(r.stderr).toMatch(says);
    }
  });

  it('--listeners 0 replays with the server live and no real clients (the default --workers 1 does not ask for one)', async () => {
    const out = outDir();
    const r = await runToEnd(['replay', '--speed', 'max', '--port', '0', '--listeners', '0', '--no-stay', '--out', out]);
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(await readFile(join(out, 'report.json'), 'utf8')) as Report;
    expect(report.withServer).toBe(true);
    for (const e of report.expectations) expect(e.pass, `${e.name}: ${e.actual}`).toBe(true);
    expect(report.run!.realListeners).toBeUndefined();
  });

  it('an --out folder that cannot take the report is refused before the night, not after it', async () => {
    const out = outDir();
    // a path under a file (ENOTDIR): as a read-only folder would be for a user who is not root
    await writeFile(join(out, 'a-file'), '');
    const r = await runToEnd(['replay', '--speed', 'max', '--out', join(out, 'a-file', 'report')]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(`stampede: --out: cannot write the report there: ENOTDIR ${join(out, 'a-file', 'report')}`);
    // nothing was replayed: no progress line, no summary (before: the whole night ran, then ENOTDIR)
    expect(r.stdout).not.toMatch(/\d\d:\d\d ET/);
    expect(r.stdout).not.toContain('facts met');
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
