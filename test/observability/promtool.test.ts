import { execFile } from 'node:child_process';
import { readdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { ensurePrometheus } from '../setup/prometheus.js';

const run = promisify(execFile);
const PROM_DIR = fileURLToPath(new URL('../../dashboards/prometheus/', import.meta.url));

async function promtool(args: string[]): Promise<{ code: number; out: string }> {
  try {
    const { stdout, stderr } = await run('promtool', args, { cwd: PROM_DIR });
    return { code: 0, out: stdout + stderr };
  } catch (e) {
    const err = e as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof err.code === 'number' ? err.code : 1, out: `${err.stdout ?? ''}${err.stderr ?? ''}` };
  }
}

const yml = async (dir: string): Promise<string[]> => (await readdir(`${PROM_DIR}${dir}`)).filter((f) => f.endsWith('.yml')).map((f) => `${dir}/${f}`);

describe('promtool', () => {
  beforeAll(async () => {
    await ensurePrometheus();
  });

  it('check config accepts prometheus.yml (and the rule files it loads)', async () => {
    const r = await promtool(['check', 'config', 'prometheus.yml']);
    expect(r.out).toContain('SUCCESS');
    expect(r.code, r.out).toBe(0);
  });

  it('check rules accepts the real-time and the --speed 60 rules', async () => {
    const files = [...(await yml('rules')), ...(await yml('rules-speed60'))];
    expect(files.length).toBe(2);
    const r = await promtool(['check', 'rules', ...files]);
    expect(r.code, r.out).toBe(0);
    expect(r.out).toMatch(/SUCCESS: \d+ rules found/);
  });

  it('test rules: every alert fires on a made-up incident and resolves after it', async () => {
    const tests = await yml('tests');
    expect(tests.length).toBeGreaterThan(0);
    const r = await promtool(['test', 'rules', ...tests]);
    expect(r.code, r.out).toBe(0);
    expect(r.out).toContain('SUCCESS');
  });

  it('test rules is not vacuous: a wrong expectation fails', async () => {
    // the same series but claiming the page alert is quiet mid-incident must be reported as a failure
    const { writeFile, mkdtemp, rm, copyFile, mkdir } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const dir = await mkdtemp(`${tmpdir()}/stampede-promtool-`);
    try {
      await mkdir(`${dir}/rules`);
      await copyFile(`${PROM_DIR}rules/stampede-slo.yml`, `${dir}/rules/stampede-slo.yml`);
      await mkdir(`${dir}/tests`);
      await writeFile(
        `${dir}/tests/wrong.yml`,
        [
          'rule_files: [../rules/stampede-slo.yml]',
          'evaluation_interval: 1m',
          'tests:',
          '  - interval: 1m',
          '    input_series:',
          `      - series: 'stampede_join_attempts_total{kind="virtual",outcome="admitted"}'`,
          "        values: '0+10x120'",
          `      - series: 'stampede_join_attempts_total{kind="virtual",outcome="failed"}'`,
          "        values: '0x60 0+10x60'",
          '    alert_rule_test:',
          '      - eval_time: 75m',
          '        alertname: StampedeJoinAvailabilityPage',
          '',
        ].join('\n'),
      );
      const { code, out } = await (async () => {
        try {
          await run('promtool', ['test', 'rules', 'tests/wrong.yml'], { cwd: dir });
          return { code: 0, out: '' };
        } catch (e) {
          const err = e as { code?: number; stdout?: string; stderr?: string };
          return { code: err.code ?? 1, out: `${err.stdout ?? ''}${err.stderr ?? ''}` };
        }
      })();
      expect(code).not.toBe(0);
      expect(out).toContain('StampedeJoinAvailabilityPage');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
