import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ONE_ADDRESS_CROWD_SETS, setArgs } from '../../src/config.js';
import type { IntervalLine, LoadResult } from '../../src/load/index.js';
import { runCli, runToEnd } from '../helpers/cli.js';
import { useTempDir } from '../helpers/tmp.js';

/** A percentile is never above the largest latency measured, in any kind of any scenario. */
function expectPercentilesWithinMax(r: LoadResult): void {
  for (const k of [...r.kinds, ...r.scenarios.flatMap((s) => s.kinds)])
    if (k.max !== null) for (const p of [k.p50, k.p90, k.p95, k.p99, k.p999]) expect(p!, k.kind).toBeLessThanOrEqual(k.max);
}

describe('stampede load', () => {
  const tempDir = useTempDir('stampede-load-');

  it('runs a profile against its own server, prints a summary, writes JSON and exports its own metrics', async () => {
    const dir = tempDir();
    const json = join(dir, 'r.json');
    // a threshold that holds however busy the test machine is (on a starved one even a join can time out)
    const profile = join(dir, 'listeners.yaml');
    await writeFile(profile, 'name: listeners\nkind: ws\nphases: [{duration: 3, arrivalRate: 50}]\nthresholds: ["join.requests>=1"]\n');
    const r = runCli(['load', profile, '--json', json, '--metrics-port', '0']);
    const [, url] = await r.waitFor(/load generator metrics on (http:\/\/127\.0\.0\.1:\d+\/metrics)/);
    // while it runs, its own /metrics shows the listeners it holds open (scraped until one is: the
    // progress line, printed every 2 s into a pipe, may show none connected yet in a 3 s run)
    let text = '';
    while (!/^stampede_client_ws_open [1-9]/m.test(text) && r.child.exitCode === null) {
      text = await fetch(url!).then((res) => res.text(), () => '');
      await new Promise((ok) => setTimeout(ok, 50));
    }
    expect(text).toMatch(/^stampede_client_ws_open [1-9]/m);
    expect((await fetch(url!.replace('/metrics', '/other'))).status).toBe(404);
    expect((await r.exited).code, r.stderr()).toBe(0);
    expect(r.stdout()).toMatch(/PASS {2}join\.requests>=1 {2}\(actual [1-9]\d*\)/);
    const result = JSON.parse(await readFile(json, 'utf8')) as LoadResult;
    expect(result.pass).toBe(true);
    expect(result.kinds.map((k) => k.kind)).toEqual(['join', 'ws_connect', 'audio']);
    expectPercentilesWithinMax(result);
  });

  it('a mixed run against a live `stampede serve`: several scenarios at once, thresholds per scenario and overall, exit 99 when one fails', async () => {
    const dir = tempDir();
    // no demo space: with the operator token the load creates and starts one of its own
    const token = 'load-test-operator-token-0123';
    const server = runCli(['serve', '--port', '0', '--log-level', 'warn', '--no-demo'], { STAMPEDE_OPERATOR_TOKEN: token });
    try {
      const [, url] = await server.waitFor(/listening on (http:\/\/127\.0\.0\.1:\d+)/);
      const file = join(dir, 'mixed.yaml');
      await writeFile(
        file,
        [
          'name: mixed',
          'thresholds: ["errors<1", "p(95)<0.001"]', // the second cannot hold: the overall verdict fails
          'scenarios:',
          '  joins: {kind: http, request: join, connections: 5, phases: [{duration: 2, arrivalRate: 30}], tags: {plane: join}, thresholds: ["join.errors<1", "join.requests>=10"]}',
          '  polling: {kind: http, request: details, executor: constant-vus, vus: 2, duration: 2, startTime: 1, thresholds: ["details.p50<0.001"]}',
          '  held: {kind: ws, executor: constant-vus, vus: 5, duration: 3, thresholds: ["ws_connect.errors<1"]}',
        ].join('\n'),
      );
      const none = await runToEnd(['load', file, '--target', url!, '--quiet'], { STAMPEDE_OPERATOR_TOKEN: '' });
      expect(none.code).toBe(1);
      expect(none.stderr).toContain('--token <operator token> to create one');
      const r = await runToEnd(['load', file, '--target', url!, '--token', token, '--json', '-']);
      expect(r.code, r.stderr).toBe(99);
      const spaces = (await (await fetch(`${url}/api/v1/spaces`)).json()) as { spaces: { title: string; state: string }[] };
      expect(spaces.spaces.map((s) => [s.title, s.state])).toEqual([['stampede load', 'live']]);
      // --json -: stdout is the JSON alone; the summary went to stderr
      const result = JSON.parse(r.stdout) as LoadResult;
      expect(r.stderr).toContain('scenario polling: http, constant-vus, from 1 s');
      expect(r.stderr).toContain('scenario joins: http, arrival-rate, from 0 s, tags plane=join');
      expect(result.target).toBe(url);
      expect(result.scenarios.map((s) => [s.name, s.executor, s.pass])).toEqual([
        ['joins', 'arrival-rate', true],
        ['polling', 'constant-vus', false],
        ['held', 'constant-vus', true],
      ]);
      const [joins, polling, held] = result.scenarios;
      expect(joins!.tags).toEqual({ plane: 'join' });
      expect(joins!.kinds[0]!.requests).toBeGreaterThanOrEqual(10);
      expect(polling!.kinds[0]!.requests).toBeGreaterThan(0);
      expect(held!.ws!.peakConnected).toBeGreaterThan(0);
      // the overall view merges every scenario's requests of a kind (joins from the HTTP storm and the listeners)
      const overallJoin = result.kinds.find((k) => k.kind === 'join')!;
      expect(overallJoin.requests).toBe(joins!.kinds[0]!.requests + held!.kinds.find((k) => k.kind === 'join')!.requests);
      expect(result.thresholds).toEqual([
        { threshold: 'errors<1', actual: 0, pass: true },
        { threshold: 'p(95)<0.001', actual: expect.any(Number), pass: false },
      ]);
      expect(result.pass).toBe(false);
      expectPercentilesWithinMax(result);
    } finally {
      server.child.kill('SIGTERM');
      await server.exited;
    }
  });

  it('--threshold adds gates on any percentile, no data fails, --quiet keeps only the summary, --out streams NDJSON per second', async () => {
    const dir = tempDir();
    const nd = join(dir, 'out.ndjson');
    const profile = join(dir, 'details.yaml');
    await writeFile(profile, 'name: details\nkind: http\nrequest: details\nconnections: 2\nphases: [{duration: 2, arrivalRate: 20}]\n');
    const r = await runToEnd(['load', profile, '--quiet', '--threshold', 'p(99.9)<60000', '--threshold', 'details.availability>0.5', '--threshold', 'audio.p99<250', '--out', `ndjson=${nd}`]);
    expect(r.code, r.stderr).toBe(99);
    expect(r.stdout).not.toContain('started a server');
    expect(r.stdout).not.toMatch(/requests \d+ {2}ok/); // no progress line
    expect(r.stdout).toMatch(/PASS {2}p\(99\.9\)<60000 {2}\(actual [\d.]+ ms\)/);
    expect(r.stdout).toMatch(/PASS {2}details\.availability>0\.5 {2}\(actual [\d.]+% \(/);
    // nothing measured it: a gate on silence fails
    expect(r.stdout).toContain('FAIL  audio.p99<250  (actual no data)');
    expect(r.stdout).toContain('thresholds: 2 passed, 1 failed — FAIL');
    const lines = (await readFile(nd, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as IntervalLine | ({ type: 'summary' } & LoadResult));
    const intervals = lines.filter((l): l is IntervalLine => l.type === 'interval');
    expect(intervals.length).toBeGreaterThanOrEqual(2);
    for (const l of intervals) expect(l).toMatchObject({ scenario: 'details', kind: 'details', tags: {} });
    const summary = lines.at(-1) as { type: string } & LoadResult;
    expect(summary.type).toBe('summary');
    // the per-second lines add up to the run's totals
    expect(intervals.reduce((a, l) => a + l.requests, 0)).toBe(summary.kinds[0]!.requests);
  });

  it('abortOnFail stops the whole run as soon as its threshold fails, with exit 99 (in one process, and across load workers)', async () => {
    const dir = tempDir();
    const profile = join(dir, 'abort.yaml');
    await writeFile(profile, 'name: abort\nkind: http\nrequest: details\nconnections: 2\nphases: [{duration: 30, arrivalRate: 20}]\nthresholds: [{threshold: "p50<0.001", abortOnFail: true}]\n');
    const t0 = Date.now();
    const runs = await Promise.all([runToEnd(['load', profile, '--quiet']), runToEnd(['load', profile, '--quiet', '--workers', '2'])]);
    for (const r of runs) {
      expect(r.code, r.stderr).toBe(99);
      expect(r.stdout).toMatch(/ABORTED at [\d.]+ s: p50<0\.001 \(scenario abort\) failed and has abortOnFail/);
    }
    expect(runs[1]!.stdout).toContain('2 load workers');
    expect(Date.now() - t0).toBeLessThan(20_000); // far short of the 30 s profile
  });

  it('--workers 3 against a live `stampede serve`: one report whose counts are what the server saw, merged client metrics while it runs', async () => {
    const dir = tempDir();
    // Every client here is one address (127.0.0.1). With the server's per-address limits (docs/reliability.md
    // #23) the HTTP joins below, whose tickets are never used, hold maxTicketsPerAddress = 50 of them after
    // ~1.7 s, and from then on every join from the address is 429 TOO_MANY_TICKETS for the ticket TTL (30 s):
    // a listener not in by then (a slow start on a busy machine, one refusal and its backoff) never gets in,
    // and the peak below was 1. The crowd on one address is lifted as `stampede load`'s own server does.
    const server = runCli(['serve', '--port', '0', '--log-level', 'warn', ...setArgs(ONE_ADDRESS_CROWD_SETS)]);
    try {
      const [, url] = await server.waitFor(/listening on (http:\/\/127\.0\.0\.1:\d+)/);
      const joinsSeen = async (): Promise<number> => {
        const text = await (await fetch(`${url}/metrics`)).text();
        return [...text.matchAll(/^stampede_join_attempts_total\{kind="real",outcome="\w+"\} (\d+)/gm)].reduce((a, m) => a + Number(m[1]), 0);
      };
      const before = await joinsSeen();
      const file = join(dir, 'split.yaml');
      await writeFile(
        file,
        [
          'name: split',
          'thresholds: ["join.requests>=1"]',
          'scenarios:',
          '  joins: {kind: http, request: join, connections: 6, phases: [{duration: 3, arrivalRate: 30}]}',
          '  held: {kind: ws, executor: constant-vus, vus: 7, duration: 3}',
        ].join('\n'),
      );
      const nd = join(dir, 'out.ndjson');
      const r = runCli(['load', file, '--target', url!, '--workers', '3', '--metrics-port', '0', '--json', join(dir, 'r.json'), '--out', `ndjson=${nd}`]);
      const [, metricsUrl] = await r.waitFor(/load generator metrics on (http:\/\/127\.0\.0\.1:\d+\/metrics)/);
      // the workers' metrics, merged into one scrape: listeners held and joins made across the threads
      let scrape = '';
      while (!/^stampede_client_ws_open [1-9]/m.test(scrape) && r.child.exitCode === null) {
        scrape = await fetch(metricsUrl!).then((res) => res.text(), () => '');
        await new Promise((ok) => setTimeout(ok, 50));
      }
      expect(scrape).toMatch(/^stampede_client_ws_open [1-9]/m);
      expect(scrape).toMatch(/^stampede_client_requests_total\{kind="join",outcome="ok"\} [1-9]/m);
      expect((await r.exited).code, r.stderr()).toBe(0);
      expect(r.stdout()).toContain('split against');
      expect(r.stdout()).toContain('3 load workers, histograms merged');
      const result = JSON.parse(await readFile(join(dir, 'r.json'), 'utf8')) as LoadResult;
      expect(result.workers).toBe(3);
      const [joins, held] = result.scenarios;
      // 7 VUs split 3/2/2 over the workers: all of them were connected at once
      expect(held!.ws!.peakConnected).toBe(7);
      expect(held!.ws!.chunks).toBeGreaterThan(0);
      // nothing lost or counted twice in the merge: every join the server saw is in the one report
      const overallJoin = result.kinds.find((k) => k.kind === 'join')!;
      expect(overallJoin.requests).toBe(joins!.kinds[0]!.requests + held!.kinds.find((k) => k.kind === 'join')!.requests);
      // the server saw every one of them; autocannon stops at its deadline with at most one request in
      // flight per connection (6 over the workers), and a listener's join can be left unanswered at the end
      const seen = (await joinsSeen()) - before;
      expect(seen).toBeGreaterThanOrEqual(overallJoin.requests);
      expect(seen - overallJoin.requests).toBeLessThanOrEqual(6 + held!.ws!.joinsAbandoned);
      // the per-second stream is cut from the same merged tallies: it adds up to the report
      const lines = (await readFile(nd, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as IntervalLine | { type: 'summary' });
      const intervals = lines.filter((l): l is IntervalLine => l.type === 'interval');
      for (const s of result.scenarios)
        for (const k of s.kinds) expect(intervals.filter((l) => l.scenario === s.name && l.kind === k.kind).reduce((a, l) => a + l.requests, 0), `${s.name} ${k.kind}`).toBe(k.requests);
      expectPercentilesWithinMax(result);
    } finally {
      server.child.kill('SIGTERM');
      await server.exited;
    }
  });

  it('substitutes the environment into a profile, and names a variable that is missing', async () => {
    const dir = tempDir();
    const profile = join(dir, 'env.yaml');
    await writeFile(profile, 'name: env\nkind: http\nrequest: details\nconnections: 1\nphases: [{duration: 1, arrivalRate: ${RATE}}]\nthresholds: ["requests>=${MIN:-1}"]\n');
    const ok = await runToEnd(['load', profile, '--quiet', '--json', '-'], { RATE: '5' });
    expect(ok.code, ok.stderr).toBe(0);
    expect((JSON.parse(ok.stdout) as LoadResult).thresholds).toEqual([]);
    expect(ok.stderr).toContain('PASS  requests>=1');
    const missing = await runToEnd(['load', profile], { RATE: '' });
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('environment variable RATE is not set');
  });

  it('says what went wrong: the URL and the cause, the profiles there are, the threshold grammar', async () => {
    const unreachable = await runToEnd(['load', 'details-poll', '--target', 'http://127.0.0.1:59999']);
    expect(unreachable.code).toBe(1);
    expect(unreachable.stderr).toContain('cannot reach http://127.0.0.1:59999/api/v1/spaces: connect ECONNREFUSED 127.0.0.1:59999');
    const unknown = await runToEnd(['load', 'no-such-profile']);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/no-such-profile: .*profiles: attack-flood, chunk-fetch, details-poll, join-storm, .*ws-reconnect-storm/);
    const bad = await runToEnd(['load', 'details-poll', '--threshold', 'latency<5']);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain("bad threshold 'latency<5'");
    const off = await runToEnd(['load', 'details-poll', '--target', 'http://10.1.2.3:8080']);
    expect(off.code).toBe(1);
    expect(off.stderr).toContain('load targets loopback only');
  });
});
