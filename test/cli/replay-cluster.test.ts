import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { httpAnswers, redisAnswers } from '../../src/cluster/index.js';
import type { Report } from '../../src/report/index.js';
import { runCli, type Running } from '../helpers/cli.js';
import { useTempDir } from '../helpers/tmp.js';

/** The URLs the replay's banner printed: the proxy, each instance, the replay's own instance and Redis. */
function banner(out: string): { proxy: string; spaceId: string; instances: { id: string; url: string; log: string }[]; own: string; redisPort: number } {
  return {
    proxy: /server live on (http:\/\/127\.0\.0\.1:\d+)/.exec(out)![1]!,
    spaceId: /API\s+http:\/\/127\.0\.0\.1:\d+\/api\/v1\/spaces\/(\S+)/.exec(out)![1]!,
    instances: [...out.matchAll(/ (i\d)\s+(http:\/\/127\.0\.0\.1:\d+)\s+metrics \S+\s+log (\S+)/g)].map((m) => ({ id: m[1]!, url: m[2]!, log: m[3]! })),
    own: /replay\s+(http:\/\/127\.0\.0\.1:\d+)\s+dashboard/.exec(out)![1]!,
    redisPort: Number(/redis\s+redis:\/\/127\.0\.0\.1:(\d+)/.exec(out)![1]),
  };
}

/** Nothing of the cluster answers any more: the instances, the replay's own server, the proxy and Redis are gone. */
async function allGone(b: ReturnType<typeof banner>): Promise<void> {
  for (const url of [b.proxy, b.own, ...b.instances.map((i) => i.url)]) expect(await httpAnswers(`${url}/healthz`), url).toBe(false);
  expect(await redisAnswers(b.redisPort)).toBe(false);
}

describe('stampede replay --instances', () => {
  const dir = useTempDir('stampede-replay-cluster-');
  let cli: Running | null = null;
  afterEach(async () => {
    if (cli && cli.child.exitCode === null) {
      cli.child.kill('SIGINT');
      await cli.exited;
    }
    cli = null;
  });

  it('replays the night on Redis, haproxy and 2 instances, the real listeners from 2 load workers: the facts hold, the listeners land on both instances from both workers, and everything stops at the end', async () => {
    const out = join(dir(), 'report');
    cli = runCli(['replay', '--instances', '2', '--workers', '2', '--port', '0', '--speed', '1200', '--listeners', '8', '--no-stay', '--out', out, '--cluster-dir', join(dir(), 'cluster'), '--log-level', 'warn']);
    await cli.waitFor(/real listeners join through the proxy/);
    const b = banner(cli.stdout());
    expect(b.instances.map((i) => i.id)).toEqual(['i1', 'i2']);
    const { code } = await cli.exited;
    expect(code, cli.stderr()).toBe(0);

    // the same report as one process, scored by the same facts, saying where it ran
    const report = JSON.parse(await readFile(join(out, 'report.json'), 'utf8')) as Report;
    expect(report.withServer).toBe(true);
    expect(report.expectations.length).toBeGreaterThanOrEqual(5);
    // a fact that fails says what the replay and the instances warned of (a lease taken over, shedding, a failed write)
    const warned = (text: string): string[] => text.split('\n').filter((l) => /"level":(40|50|60)/.test(l));
    const warnings = async (): Promise<string> => {
      const logs = await Promise.all(b.instances.map(async (i) => warned(await readFile(i.log, 'utf8').catch(() => '')).map((l) => `${i.id} ${l}`)));
      return `\nthe replay's warnings:\n${warned(cli!.stdout()).join('\n')}\n${cli!.stderr()}\nthe instances' warnings:\n${logs.flat().join('\n')}`;
    };
    for (const e of report.expectations) expect(e.pass, `${e.name}: ${e.actual}${e.pass ? '' : await warnings()}`).toBe(true);
    expect(cli.stdout()).toContain(`${report.expectations.length}/${report.expectations.length} facts met`);
    const cluster = report.run!.cluster!;
    expect(cluster.instances).toBe(2);
    expect(cluster.perInstance.map((i) => i.id)).toEqual(['i1', 'i2']);
    // the real listeners joined through the proxy and heard the model's instance's host on both instances
    expect(Math.max(...report.series.map((s) => s.realListeners))).toBeGreaterThan(0);
    for (const i of cluster.perInstance) expect(i.chunksSent, `${i.id} delivered audio to its listeners`).toBeGreaterThan(0);
    expect(cluster.perInstance.reduce((a, i) => a + i.joinsAdmitted, 0)).toBeGreaterThanOrEqual(2);
    // counted at the clients, in both workers
    const real = report.run!.realListeners!;
    expect(real.workers).toBe(2);
    for (const w of real.perWorker!) expect(w.chunks, "each worker's listeners heard the host").toBeGreaterThan(0);
    // (an instance may also have admitted a join whose answer came after the night ended)
    expect(cluster.perInstance.reduce((a, i) => a + i.joinsAdmitted, 0)).toBeGreaterThanOrEqual(real.joins.admitted);
    const md = await readFile(join(out, 'report.md'), 'utf8');
    expect(md).toMatch(/- instances: 2 behind haproxy.* i1: peak \d+ real listeners, \d+ joins admitted, [\d,]+ chunks sent; i2: /);
    expect(await readFile(join(out, 'report.html'), 'utf8')).toContain('<dt>instances</dt>');

    await allGone(b);
    expect(await readFile(b.instances[0]!.log, 'utf8')).toContain('stopped cleanly');
  }, 60_000);

  it('carries a room crash and its audio faults to every instance, then stops everything on Ctrl-C mid-night and writes no report', async () => {
    const out = join(dir(), 'report');
    // a room that crashes and reopens elsewhere; its audio fault made plain for the test (every chunk of every room
    // lost from the first room's opening to the end of the night). The join
    // path is open (every join admitted at once), so the real listeners that arrive before the crash (about 7
    // of 10) are inside the first room when it crashes, at 18:13: with the scenario's own join path (3–92% of
    // joins ok until then, a refused listener backing off up to 5 s, 100 simulated minutes at this speed) one
    // of them was, or none.
    const scenario = 'scenarios/twitter-spaces-2023-05-24-desantis.yaml';
    const openJoins = 'assumptions.capacity.keyframes=[{"at":"17:50","joinsPerSecond":1000000}]';
    cli = runCli(['replay', scenario, '--set', 'assumptions.audio.faults=[{"from":"17:55","to":"19:50","chunkLoss":1}]', '--set', openJoins, '--instances', '2', '--workers', '2', '--port', '0', '--speed', '1200', '--listeners', '10', '--no-stay', '--out', out, '--cluster-dir', join(dir(), 'cluster'), '--log-level', 'warn']);
    await cli.waitFor(/real listeners join through the proxy/);
    const b = banner(cli.stdout());
    // The crash reaches each instance over Redis, after the replay's own clock has moved on, and an instance
    // counts a listener's close when the listener has answered its close frame: wait until every instance has
    // ended the first room and holds none of its listeners (its own, and the others' as they last reported them).
    const firstRoom = async (url: string) => ((await (await fetch(`${url}/api/v1/spaces/${b.spaceId}`)).json()) as { space: { state: string; listeners: { real: number } } }).space;
    await expect.poll(async () => (await Promise.all(b.instances.map(async (i) => firstRoom(i.url)))).map((r) => `${r.state} ${r.listeners.real}`), { timeout: 30_000, interval: 50 }).toEqual(['ended 0', 'ended 0']);
    const scraped = await Promise.all(b.instances.map(async (i) => (await fetch(`${i.url}/metrics`)).text()));
    const value = (text: string, series: string): number => Number(new RegExp(`^${series.replace(/[{}]/g, '\\$&')} (\\S+)$`, 'm').exec(text)?.[1] ?? 0);
    // the first room is the only one ended there (the second one ends an hour later): a close with 4500 could only be the crash's
    for (const t of scraped) expect(value(t, 'stampede_spaces{state="ended"}')).toBe(1);
    // the crash closed the listeners on the instances with 4003 (crashed, follow the conversation), not 4500 (ended)
    expect(scraped.reduce((a, t) => a + value(t, 'stampede_ws_closes_total{code="4003"}'), 0)).toBeGreaterThan(0);
    for (const t of scraped) expect(value(t, 'stampede_ws_closes_total{code="4500"}')).toBe(0);
    // and every instance played the scenario's audio fault on its own fan-out (chunks dropped)
    // (the fault lasts the night: each instance drops the chunks it is sent, and every chunk is sent to every instance,
    // however late a busy machine gets them there)
    await expect.poll(async () => Promise.all(b.instances.map(async (i) => value(await (await fetch(`${i.url}/metrics`)).text(), 'stampede_faults_injected_total{kind="drop"}') > 0)), { timeout: 30_000, interval: 100 }).toEqual([true, true]);
    cli.child.kill('SIGINT');
    expect((await cli.exited).code, cli.stderr()).toBe(130);
    expect(cli.stdout()).toContain('interrupted: no report written');
    expect(existsSync(out)).toBe(false);
    await allGone(b);
  }, 60_000);
});
