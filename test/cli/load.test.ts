import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli, runToEnd } from '../helpers/cli.js';
import { useTempDir } from '../helpers/tmp.js';

describe('stampede load', () => {
  const tempDir = useTempDir('stampede-load-');

  it('runs a profile against its own server, prints a summary, writes JSON and exports its own metrics', async () => {
    const dir = tempDir();
    const json = join(dir, 'r.json');
    // thresholds that hold however busy the test machine is (a shedding server refuses, it does not err)
    const profile = join(dir, 'listeners.yaml');
    await writeFile(profile, 'name: listeners\nkind: ws\nphases: [{duration: 3, arrivalRate: 50}]\nthresholds: ["errors<1"]\n');
    const r = runCli(['load', profile, '--json', json, '--metrics-port', '0']);
    const [, url] = await r.waitFor(/load generator metrics on (http:\/\/127\.0\.0\.1:\d+\/metrics)/);
    await r.waitFor(/connected [1-9]/);
    const text = await (await fetch(url!)).text();
    expect(text).toMatch(/^stampede_client_ws_open [1-9]/m);
    expect((await r.exited).code, r.stderr()).toBe(0);
    expect(r.stdout()).toMatch(/PASS {2}errors<1/);
    const result = JSON.parse(await readFile(json, 'utf8')) as { pass: boolean; kinds: { kind: string; p50: number; p99: number; p999: number; max: number }[] };
    expect(result.pass).toBe(true);
    expect(result.kinds.map((k) => k.kind)).toEqual(['join', 'ws_connect', 'audio']);
    for (const k of result.kinds) expect(k.p50).toBeLessThanOrEqual(k.p999);
  });

  it('exits non-zero when a threshold is breached', async () => {
    const dir = tempDir();
    const profile = join(dir, 'strict.yaml');
    await writeFile(profile, 'name: strict\nkind: http\nrequest: details\nphases: [{duration: 1, arrivalRate: 100}]\nthresholds: ["p50<0.001"]\n');
    const r = await runToEnd(['load', profile]);
    expect(r.code).toBe(2);
    expect(r.stdout).toMatch(/FAIL {2}p50<0\.001/);
  });

  it('refuses a target off this machine', async () => {
    const r = await runToEnd(['load', 'details-poll', '--target', 'http://10.1.2.3:8080']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('load targets loopback only');
  });
});
