import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { expressions } from '../../src/dashboards/builder.js';
import { generateDashboards } from '../../src/dashboards/generate.js';
import type { SimPhase } from '../../src/metrics/index.js';
import { LiveReplayPort, ReplayFeed } from '../../src/replay/index.js';
import type { ReplayStep } from '../../src/sim/port.js';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { systemClock } from '../../src/clock.js';
import { createClientMetrics, parseProfile, runLoad } from '../../src/load/index.js';
import { createRng } from '../../src/sim/index.js';
import { api, startApp } from '../helpers/app.js';
import { startPrometheus, type RunningPrometheus } from '../setup/prometheus.js';

const RULES = fileURLToPath(new URL('../../dashboards/prometheus/rules/stampede-slo.yml', import.meta.url));

/** What Grafana would substitute for the template variables when "All" is selected. */
function substitute(expr: string): string {
  return expr.replaceAll('$__rate_interval', '1m').replaceAll('$load_job', '.*').replaceAll('$job', '.*').replaceAll('$instance', '.*');
}

/** A short, hand-made replay through the real replay port: the outage's phases in order. */
const PHASES: { phase: SimPhase; availability: number; listeners: number; attack: number; events: string[] }[] = [
  { phase: 'pre_open', availability: 1, listeners: 0, attack: 0, events: [] },
  { phase: 'open', availability: 1, listeners: 5_000, attack: 10, events: ['space opened'] },
  { phase: 'failing', availability: 0.3, listeners: 20_000, attack: 4_000, events: ['join path failing', 'mitigation: admission cap'] },
  { phase: 'live', availability: 1, listeners: 60_000, attack: 100, events: ['host started'] },
  { phase: 'ended', availability: 1, listeners: 0, attack: 0, events: ['host ended'] },
];

function step(i: number, t0: number): ReplayStep {
  const p = PHASES[i]!;
  const attempts = 1_000;
  const failures = Math.round(attempts * (1 - p.availability));
  return {
    t: t0 + i * 600_000,
    phase: p.phase,
    listeners: p.listeners,
    offered: attempts + p.attack,
    admitted: attempts - failures,
    attack: p.attack,
    availability: p.availability,
    latencyP50Ms: 2,
    latencyP99Ms: p.availability < 1 ? 9_000 : 40,
    attempts,
    failures,
    events: p.events,
  };
}

describe('every dashboard panel shows data from a real Prometheus scraping Stampede', () => {
  let prom: RunningPrometheus;
  let closeApp: () => Promise<void> = async () => {};
  let ws: WebSocket | null = null;
  let loadServer: Server | null = null;

  beforeAll(async () => {
    const t0 = Date.UTC(2024, 7, 12, 23, 0, 0);
    const feed = new ReplayFeed({ scenarioName: 'test', scheduledStartMs: t0, speed: 600 });
    const started = await startApp({ chunkIntervalMs: 100 }, { replay: feed });
    closeApp = started.close;
    const { app, url } = started;
    // the load generator's own view, scraped as its own job, as in dashboards/prometheus/prometheus.yml
    const clientMetrics = createClientMetrics();
    loadServer = createServer((_req, res) => void clientMetrics.registry.metrics().then((t) => res.writeHead(200, { 'content-type': clientMetrics.registry.contentType }).end(t)));
    await new Promise<void>((r) => loadServer!.listen(0, '127.0.0.1', r));
    const loadTarget = `127.0.0.1:${(loadServer.address() as AddressInfo).port}`;
    prom = await startPrometheus({
      scrapeConfigs: [
        { job_name: 'stampede', static_configs: [{ targets: [new URL(url).host] }] },
        { job_name: 'stampede-load', static_configs: [{ targets: [loadTarget] }] },
      ],
      ruleFiles: [RULES],
    });
    await prom.waitFor('up{job="stampede"} == 1');
    await prom.waitFor('up{job="stampede-load"} == 1');

    const port = new LiveReplayPort({ server: app.server, metrics: app.metrics, feed, title: 'replay', hostName: 'host', scheduledStartMs: t0, speed: 600 });
    for (let i = 0; i < PHASES.length; i++) {
      const s = step(i, t0);
      port.publish(s);
      if (s.phase === 'live') {
        await port.startSpace();
        // one real listener: a join through HTTP and a WebSocket that receives audio
        const join = await api<{ wsUrl: string; ticket: string }>(url, 'POST', `/api/v1/spaces/${port.space.id}/join`, { name: 'prom test' });
        expect(join.status, JSON.stringify(join.body)).toBe(200);
        const wsUrl = new URL(join.body.wsUrl, url.replace(/^http/, 'ws'));
        if (!wsUrl.searchParams.has('ticket')) wsUrl.searchParams.set('ticket', join.body.ticket);
        ws = new WebSocket(wsUrl);
        await new Promise<void>((resolve, reject) => {
          ws!.on('message', (_d, binary) => binary && resolve());
          ws!.once('error', reject);
        });
        await prom.waitFor('rate(stampede_audio_chunks_sent_total[1m]) > 0');
        // the join route's histogram series is born with the first join: a second join after
        // Prometheus has seen it gives rate() two different samples
        await prom.waitFor('stampede_http_request_duration_seconds_count{route="join"}');
        expect((await api(url, 'POST', `/api/v1/spaces/${port.space.id}/join`, { name: 'second' })).status).toBe(200);
        await prom.waitFor('rate(stampede_http_request_duration_seconds_count{route="join"}[1m]) > 0');
        // a short, bounded load: WebSocket listeners through the join path, and a junk flood
        const load = (yaml: string) => runLoad({ profile: parseProfile(yaml, 'inline.yaml'), target: url, spaceId: port.space.id, clock: systemClock(), random: createRng(1).next, metrics: clientMetrics });
        await Promise.all([
          load('name: listeners\nkind: ws\nholdSeconds: 2\nphases: [{duration: 3, arrivalRate: 10}, {duration: 2, arrivalRate: 0}]'),
          load('name: junk\nkind: http\nrequest: junk\nconnections: 5\nphases: [{duration: 4, arrivalRate: 50}]'),
        ]);
        await prom.waitFor('rate(stampede_client_requests_total{kind="join"}[1m]) > 0');
        await prom.waitFor('rate(stampede_client_requests_total{kind="junk"}[1m]) > 0');
        await prom.waitFor('rate(stampede_client_audio_delay_seconds_count[1m]) > 0');
      }
      // the next phase only starts once Prometheus has seen this one, so every phase is on record
      await prom.waitFor(`stampede_sim_phase{phase="${s.phase}"} == 1`);
    }
    for (const slo of ['join-availability', 'join-latency']) await prom.waitFor(`slo:period_error_budget_remaining:ratio{sloth_slo="${slo}"}`);
  }, 120_000);

  afterAll(async () => {
    ws?.terminate();
    await prom?.stop();
    await new Promise<void>((r) => (loadServer ? loadServer.close(() => r()) : r()));
    await closeApp();
  });

  const all = Object.values(generateDashboards()).flatMap((d) => expressions(d));

  it('covers both boards', () => {
    expect(all.length).toBeGreaterThan(30);
  });

  for (const e of all) {
    it(`${e.where}: returns data (${e.source === 'client' ? 'load generator' : 'server'} series)`, async () => {
      const r = await prom.query(substitute(e.expr));
      expect(r.status, `${e.expr}\n${r.error ?? ''}`).toBe('success');
      expect(r.data?.result.length ?? 0, `no data for ${e.expr}`).toBeGreaterThan(0);
      // NaN (0/0, a quantile of nothing) would draw an empty panel: at least one real number
      const values = (r.data?.result ?? []).map((x) => Number(x.value?.[1]));
      expect(values.some(Number.isFinite), `only NaN for ${e.expr}: ${JSON.stringify(r.data?.result)}`).toBe(true);
    });
  }

  it('the replay is visible as it happened: the failing phase burned the join-availability budget', async () => {
    const r = await prom.query('max_over_time(slo:sli_error:ratio_rate5m{sloth_slo="join-availability"}[5m])');
    expect(Number(r.data?.result[0]?.value?.[1])).toBeGreaterThan(0);
    const phases = await prom.query('max by (phase) (max_over_time(stampede_sim_phase[5m])) == 1');
    expect(phases.data?.result.map((s) => s.metric.phase).sort()).toEqual(['ended', 'failing', 'live', 'open', 'pre_open']);
  });
});
