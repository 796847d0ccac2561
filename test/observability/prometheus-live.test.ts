import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as realDelay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { manualClock } from '../../src/clock.js';
import { expressions } from '../../src/dashboards/builder.js';
import { generateDashboards } from '../../src/dashboards/generate.js';
import { createReplay, type Replay } from '../../src/replay/index.js';
import { loadScenario } from '../../src/sim/index.js';
import { startPrometheus, type RunningPrometheus } from '../setup/prometheus.js';

const RULES = fileURLToPath(new URL('../../dashboards/prometheus/rules/stampede-slo.yml', import.meta.url));
const SCENARIO = fileURLToPath(new URL('../../scenarios/x-spaces-2024-08-12.yaml', import.meta.url));
/** 300×: one simulated minute per 200 ms of the replay's (manual) clock. */
const SPEED = 300;

/** What Grafana would substitute for the template variables when "All" is selected. */
function substitute(expr: string): string {
  return expr.replaceAll('$__rate_interval', '1m').replaceAll('$load_job', '.*').replaceAll('$job', '.*').replaceAll('$instance', '.*');
}

/**
 * A real replay (the default scenario, its night shortened: 15 minutes on air), scraped by a real
 * Prometheus with the project's SLO rules and nothing else running: no load generator, no hand-made
 * series. Its clock is a manual one the test moves a simulated minute at a time, waiting for Prometheus
 * to see every phase before the next; real listeners join, fail, get in and hear audio in real time.
 */
describe('every dashboard panel shows data from a real Prometheus scraping a replay, with nothing else running', () => {
  let prom: RunningPrometheus;
  let replay: Replay | null = null;
  let recordings = '';
  const phases: string[] = [];

  beforeAll(async () => {
    recordings = await mkdtemp(join(tmpdir(), 'stampede-prom-rec-'));
    const scenario = await loadScenario(SCENARIO, ['event.replayUntil=23:00', 'assumptions.hostEnd.afterMinutesLive=15']);
    const clock = manualClock(Date.now());
    let phase = '';
    replay = createReplay({
      scenario,
      seed: 1,
      speed: SPEED,
      clock,
      logger: pino({ level: 'silent' }),
      server: { port: 0, host: '127.0.0.1', recordingDir: recordings },
      // the real event loop would shed joins whenever the test machine is busy
      loadSignal: { eventLoopLagMs: () => 0, heapUsedBytes: () => 0 },
      listeners: 40,
      onStep: (s) => void (phase = s.phase),
    });
    const { url } = await replay.start();
    prom = await startPrometheus({ scrapeConfigs: [{ job_name: 'stampede', static_configs: [{ targets: [new URL(url!).host] }] }], ruleFiles: [RULES] });
    await prom.waitFor('up{job="stampede"} == 1');

    /** Moves the replay a simulated minute at a time until `done`, never past a phase Prometheus has not seen. */
    const advanceUntil = async (what: string, done: () => boolean | Promise<boolean>, maxMinutes: number): Promise<void> => {
      for (let i = 0; i < maxMinutes; i++) {
        if (phase && phase !== phases.at(-1)) {
          await prom.waitFor(`stampede_sim_phase{phase="${phase}"} == 1`);
          phases.push(phase);
        }
        if (await done()) return;
        await clock.advance(60_000 / SPEED);
        await realDelay(25); // real time for the sockets: joins, upgrades, audio
      }
      throw new Error(`the replay did not get to: ${what} (phases seen: ${phases.join(', ')})`);
    };
    const promHas = (expr: string) => async (): Promise<boolean> => ((await prom.query(expr)).data?.result.length ?? 0) > 0;
    await advanceUntil('live', () => phases.includes('live'), 180);
    // on air: real listeners hear the audio, as the client-view panels show
    await advanceUntil('audio at the real listeners', promHas('rate(stampede_client_audio_delay_seconds_count{job="stampede"}[1m]) > 0'), 15);
    await advanceUntil('the end of the conversation', () => phases.includes('ended'), 30);
    // the replay stays up (its clock no longer moves) while the panels are read
    for (const expr of [
      'rate(stampede_client_requests_total{job="stampede",kind="join"}[1m]) > 0',
      'rate(stampede_http_request_duration_seconds_count{route="join"}[1m]) > 0',
      'rate(stampede_fanout_duration_seconds_count[1m]) > 0',
      'ALERTS{alertstate="firing",alertname="StampedeJoinAvailabilityPage"}',
    ])
      await prom.waitFor(expr);
  }, 180_000);

  afterAll(async () => {
    await replay?.stop();
    await prom?.stop();
    if (recordings) await rm(recordings, { recursive: true, force: true });
  });

  const all = Object.values(generateDashboards()).flatMap((d) => expressions(d));

  it('covers both boards, client-view panels included', () => {
    expect(all.length).toBeGreaterThan(30);
    expect(all.filter((e) => e.source === 'client').length).toBeGreaterThanOrEqual(5);
  });

  for (const e of all) {
    it(`${e.where}: a number (${e.source} series)`, async () => {
      const r = await prom.query(substitute(e.expr));
      expect(r.status, `${e.expr}\n${r.error ?? ''}`).toBe('success');
      expect(r.data?.result.length ?? 0, `no data for ${e.expr}`).toBeGreaterThan(0);
      // NaN (0/0, a quantile of nothing) would draw an empty panel: at least one real number
      const values = (r.data?.result ?? []).map((x) => Number(x.value?.[1]));
      expect(values.some(Number.isFinite), `only NaN for ${e.expr}: ${JSON.stringify(r.data?.result)}`).toBe(true);
    });
  }

  it('the client-view series come from the replay itself (job stampede): its real listeners', async () => {
    const r = await prom.query('sum by (job) (stampede_client_requests_total{kind="join"})');
    expect(r.data?.result.map((s) => s.metric.job)).toEqual(['stampede']);
    expect(Number(r.data?.result[0]?.value?.[1])).toBeGreaterThan(0);
  });

  it('the error budget is a number at every evaluation, from the first one', async () => {
    for (const slo of ['join-availability', 'join-latency']) {
      // raw samples: the objective is recorded at every evaluation of the group from the very first
      const budget = (await prom.query(`slo:period_error_budget_remaining:ratio{sloth_slo="${slo}"}[15m]`)).data?.result[0]?.values ?? [];
      const objective = (await prom.query(`slo:objective:ratio{sloth_slo="${slo}"}[15m]`)).data?.result[0]?.values ?? [];
      expect(objective.length, slo).toBeGreaterThan(10);
      expect(budget.map(([t]) => t), `${slo}: an evaluation without a budget sample`).toEqual(objective.map(([t]) => t).slice(0, budget.length));
      expect(budget.length, slo).toBeGreaterThanOrEqual(objective.length - 1);
      for (const [t, v] of budget) expect(Number.isFinite(Number(v)), `${slo} at ${t}: ${v}`).toBe(true);
    }
  });

  it('the replay is visible as it happened: the phases in order, and the failing phase burned the budget', async () => {
    expect(phases).toEqual(expect.arrayContaining(['failing', 'live', 'ended']));
    expect(phases.indexOf('failing')).toBeLessThan(phases.indexOf('live'));
    const r = await prom.query('max_over_time(slo:sli_error:ratio_rate5m{sloth_slo="join-availability"}[15m])');
    expect(Number(r.data?.result[0]?.value?.[1])).toBeGreaterThan(0.5);
    const budget = await prom.query('slo:period_error_budget_remaining:ratio{sloth_slo="join-availability"}');
    expect(Number(budget.data?.result[0]?.value?.[1])).toBeLessThan(0);
  });
});
