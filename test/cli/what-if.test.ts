import { readdir, readFile, readlink } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runToEnd } from '../helpers/cli.js';
import { useTempDir } from '../helpers/tmp.js';

const SCENARIO = resolve('scenarios/x-spaces-2024-08-12.yaml');
const POLITE = 'assumptions.clients.retry.policy=jittered';
const CAPACITY = 'assumptions.capacity.keyframes[0].joinsPerSecond=20000';

describe('what-ifs side by side', () => {
  const cwd = useTempDir('stampede-whatif-');

  it('the default run and two what-ifs leave three reports; compare names what changed', async () => {
    const sets = [[], [POLITE], [CAPACITY]];
    const results = await Promise.all(sets.map((set) => runToEnd(['replay', '--speed', 'max', SCENARIO, ...set.flatMap((x) => ['--set', x])], {}, cwd())));
    const runs = results.map((r, i) => {
      expect(r.code, r.stderr).toBe(0);
      // the overrides are echoed, and the run says where its report went
      if (sets[i]!.length) expect(r.stdout).toContain(`what-if  --set ${sets[i]![0]}`);
      return r.stdout.match(/report: (.+)\/report\.html/)![1]!;
    });
    expect(runs.map((d) => d.split('/').pop())).toContain(await readlink(join(cwd(), 'out', 'latest')));
    const folders = (await readdir(join(cwd(), 'out'))).filter((f) => f !== 'latest');
    expect(folders).toHaveLength(3);
    for (const f of folders) expect((await readdir(join(cwd(), 'out', f))).sort()).toEqual(['availability.svg', 'latency.svg', 'listeners.svg', 'report.html', 'report.json', 'report.md', 'traffic.svg']);
    const polite = JSON.parse(await readFile(join(runs[1]!, 'report.json'), 'utf8')) as { run: { overrides: string[]; scenarioFile: string; scenarioSha256: string } };
    expect(polite.run).toMatchObject({ overrides: [POLITE], scenarioFile: SCENARIO });
    expect(polite.run.scenarioSha256).toMatch(/^[0-9a-f]{64}$/);
    expect(await readFile(join(runs[1]!, 'report.md'), 'utf8')).toContain(POLITE);

    const c = await runToEnd(['compare', ...runs], {}, cwd());
    expect(c.code, c.stderr).toBe(0);
    expect(c.stdout).toContain('baseline: x-spaces-2024-08-12\n');
    expect(c.stdout).toMatch(/run 2: x-spaces-2024-08-12 \+ clients\.retry\.policy=jittered\n.*\n  changed: overrides assumptions\.clients\.retry\.policy=jittered; on air 20:45 → 20:4\d \(\d min later\)/);
    expect(c.stdout).toMatch(/run 3: .*joinsPerSecond=20000\n.*\n  changed: overrides assumptions\.capacity\.keyframes\[0\]\.joinsPerSecond=20000; on air 20:45 → 20:0\d \(\d\d min earlier\); peak 1\.30M → 2\.\d\dM; 0\.0% failed in the failure window \(was 97\.8% failed\); facts met 5\/5 → 2\/5/);
    const html = await readFile(join(cwd(), 'out', 'compare', 'compare.html'), 'utf8');
    expect(html.match(/<svg /g)).toHaveLength(3);
    const json = JSON.parse(await readFile(join(cwd(), 'out', 'compare', 'compare.json'), 'utf8')) as { runs: { label: string; changes: string[] }[] };
    expect(json.runs.map((r) => r.changes.length > 0)).toEqual([false, true, true]);
  }, 120_000);

  it('an explicit --out writes exactly there and leaves out/ alone', async () => {
    const r = await runToEnd(['replay', '--speed', 'max', SCENARIO, '--out', 'mine', '--quiet'], {}, cwd());
    expect(r.code, r.stderr).toBe(0);
    expect(await readdir(cwd())).toEqual(['mine']);
    expect(r.stdout).not.toContain('ET ');
    expect(r.stdout).toContain('5/5 facts met');
  }, 60_000);
});
