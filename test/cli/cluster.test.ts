import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { httpAnswers, redisAnswers, type TargetGroup } from '../../src/cluster/index.js';
import { serverDashboard } from '../../src/dashboards/server.js';
import { runCli, runToEnd, type Running } from '../helpers/cli.js';
import { useTempDir } from '../helpers/tmp.js';
import { startPrometheus, type RunningPrometheus } from '../setup/prometheus.js';

describe('stampede cluster', () => {
  const dir = useTempDir('stampede-cluster-cli-');
  let cli: Running | null = null;
  let prom: RunningPrometheus | null = null;
  afterEach(async () => {
    await prom?.stop();
    prom = null;
    if (cli && cli.child.exitCode === null) {
      cli.child.kill('SIGINT');
      await cli.exited;
    }
    cli = null;
  });

  it('starts Redis, haproxy and the instances, prints their URLs, writes Prometheus targets, and stops everything on Ctrl-C', async () => {
    // the cluster's directory sits where the shipped prometheus.yml's cluster job looks: next to the config
    const promDir = dir();
    cli = runCli(['cluster', '--instances', '2', '--port', '0', '--dir', join(promDir, 'cluster'), '--log-level', 'warn']);
    await cli.waitFor(/Ctrl-C to stop everything/);
    const out = cli.stdout();
    const proxy = /proxy\s+(http:\/\/127\.0\.0\.1:\d+)/.exec(out)![1]!;
    const instances = [...out.matchAll(/ (i\d)\s+(http:\/\/127\.0\.0\.1:\d+)\s+metrics (\S+)\s+log (\S+)/g)].map((m) => ({ id: m[1]!, url: m[2]!, metrics: m[3]!, log: m[4]! }));
    const redisPort = Number(/redis\s+redis:\/\/127\.0\.0\.1:(\d+)/.exec(out)![1]);
    expect(instances.map((i) => i.id)).toEqual(['i1', 'i2']);

    // through the proxy: the demo space lives on i1 only until the instances share spaces over Redis
    expect(await httpAnswers(`${proxy}/readyz`)).toBe(true);
    for (const i of instances) {
      expect(await httpAnswers(`${i.url}/readyz`)).toBe(true);
      expect(await (await fetch(i.metrics)).text()).toContain('stampede_ws_connections');
    }
    expect(await redisAnswers(redisPort)).toBe(true);

    // the targets file: one group per instance, labelled with its id
    const targetsFile = /targets\s+(\S+)/.exec(out)![1]!;
    const groups = JSON.parse(await readFile(targetsFile, 'utf8')) as TargetGroup[];
    expect(groups.map((g) => [g.labels.instance, g.targets])).toEqual(instances.map((i) => [i.id, [i.url.replace('http://', '')]]));

    // a real Prometheus with the shipped cluster job (dashboards/prometheus/prometheus.yml, checked by
    // promtool in test/observability) finds both through file_sd and keeps them apart by `instance`
    const shipped = parse(await readFile(fileURLToPath(new URL('../../dashboards/prometheus/prometheus.yml', import.meta.url)), 'utf8')) as { scrape_configs: { job_name: string; file_sd_configs?: { files: string[] }[] }[] };
    const job = shipped.scrape_configs.find((c) => c.job_name === 'stampede-cluster')!;
    const files = job.file_sd_configs![0]!.files.map((f) => join(promDir, f)); // relative to the config's directory
    expect(files).toEqual([targetsFile]);
    prom = await startPrometheus({ scrapeConfigs: [{ ...job, file_sd_configs: [{ ...job.file_sd_configs![0], files }] }] });
    const up = await prom.waitFor('sum by (instance) (up{job="stampede-cluster"}) == 1');
    await expect.poll(async () => (await prom!.query('count by (instance) (stampede_ws_connections)')).data?.result.map((r) => r.metric.instance).sort(), { timeout: 20_000 }).toEqual(['i1', 'i2']);
    expect(up.data!.result.length).toBeGreaterThanOrEqual(1);
    // the server board's per-instance panels draw one line per instance, as Grafana asks with job = the cluster's
    const row = serverDashboard().panels.findIndex((p) => p.type === 'row' && p.title === 'Per instance');
    const perInstance = serverDashboard().panels.slice(row + 1, row + 7).flatMap((p) => (p.type === 'row' ? [] : p.targets.map((t) => ({ where: `${p.title} / ${t.refId}`, expr: t.expr }))));
    expect(perInstance.length).toBeGreaterThanOrEqual(6);
    for (const e of perInstance) {
      const expr = e.expr.replaceAll('$__rate_interval', '1m').replaceAll('$job', 'stampede-cluster').replaceAll('$instance', '.*');
      await expect.poll(async () => (await prom!.query(expr)).data?.result.map((r) => r.metric.instance).sort(), { timeout: 20_000, message: e.where }).toEqual(['i1', 'i2']);
    }

    cli.child.kill('SIGINT');
    expect(await cli.exited).toEqual({ code: 0, signal: null });
    expect(cli.stdout()).toContain('stopped cleanly');
    // nothing is left behind: proxy, instances and Redis are all gone
    expect(await httpAnswers(`${proxy}/healthz`)).toBe(false);
    for (const i of instances) expect(await httpAnswers(`${i.url}/healthz`)).toBe(false);
    expect(await redisAnswers(redisPort)).toBe(false);
    expect(await readFile(instances[0]!.log, 'utf8')).toContain('stopped cleanly');
  });

  it('refuses a bad instance count', async () => {
    const r = await runToEnd(['cluster', '--instances', '0']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('expected a whole number from 1 to 16');
  });
});
