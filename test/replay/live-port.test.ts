import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { manualClock, systemClock } from '../../src/clock.js';
import { startRedisServer } from '../../src/cluster/index.js';
import { simEventKind } from '../../src/metrics/index.js';
import { LiveReplayPort, ReplayFeed } from '../../src/replay/index.js';
import { loadScenario, runReplay, type ReplayStep } from '../../src/sim/index.js';
import { metricValue, useApps } from '../helpers/app.js';
import { useTempDir } from '../helpers/tmp.js';
import { useCleanup } from '../helpers/cleanup.js';

describe('the replay port', () => {
  const startApp = useApps();
  const dir = useTempDir('stampede-port-');
  const cleanup = useCleanup();

  it('counts the modelled crowd in whole joins, carrying the fractions of the flow model', async () => {
    const t0 = Date.UTC(2024, 7, 13, 0, 0, 0);
    const feed = new ReplayFeed({ scenarioName: 'test', scheduledStartMs: t0, speed: 60, timeZone: 'UTC' });
    const s = await startApp({}, { replay: feed });
    const port = new LiveReplayPort({ server: s.app.server, metrics: s.app.metrics, feed, title: 'replay', hostName: 'host', scheduledStartMs: t0, speed: 60 });
    let attempts = 0;
    let failures = 0;
    for (let i = 0; i < 100; i++) {
      // a second of the model: fractional flows, as the cohort model produces them
      const step: ReplayStep = { t: t0 + i * 1000, phase: 'failing', listeners: 1000 + i * 0.7, offered: 10.37, admitted: 0.81, attack: 0, availability: 0.0781, latencyP50Ms: 500, latencyP99Ms: 9_000, attempts: 10.37, failures: 9.56, events: [] } as ReplayStep;
      port.publish(step);
      attempts += step.attempts;
      failures += step.failures;
      const failed = await metricValue(s.app, 'stampede_join_attempts_total', { kind: 'virtual', outcome: 'failed' });
      const admitted = await metricValue(s.app, 'stampede_join_attempts_total', { kind: 'virtual', outcome: 'admitted' });
      expect(Number.isInteger(failed) && Number.isInteger(admitted)).toBe(true);
      // never more than a join behind the model, never ahead of it (up to float rounding)
      expect(failures - failed).toBeGreaterThan(-1e-6);
      expect(failures - failed).toBeLessThan(1 + 1e-6);
      expect(attempts - failures - admitted).toBeGreaterThan(-1e-6);
      expect(attempts - failures - admitted).toBeLessThan(1 + 1e-6);
    }
    // 100 seconds of 9.56 failures: 955 or 956 whole joins, as float rounding falls
    expect(failures).toBeCloseTo(956, 6);
    expect([955, 956]).toContain(await metricValue(s.app, 'stampede_join_attempts_total', { kind: 'virtual', outcome: 'failed' }));
  });

  it('on a cluster, says the space was taken over when its own instance lost the lease, rather than only that the recording is missing', async () => {
    const redis = await startRedisServer({ dir: dir(), clock: systemClock() });
    cleanup.push(() => redis.process.stop());
    const t0 = Date.UTC(2024, 7, 13, 20, 0, 0);
    const feed = new ReplayFeed({ scenarioName: 'test', scheduledStartMs: t0, speed: 60, timeZone: 'UTC' });
    // the replay's own instance on a shared bus, renewing its leases every 50 ms (150 ms leases)
    const s = await startApp({ redisUrl: redis.url, instanceId: 'replay', peerIntervalMs: 50 }, { replay: feed });
    const port = new LiveReplayPort({ server: s.app.server, metrics: s.app.metrics, feed, title: 'replay', hostName: 'host', scheduledStartMs: t0, speed: 60, timeZone: 'UTC' });
    await port.startSpace();
    const step = (i: number): ReplayStep => ({ t: t0 + i * 60_000, phase: 'live', listeners: 0, offered: 0, admitted: 0, attack: 0, availability: 1, latencyP50Ms: 1, latencyP99Ms: 1, attempts: 0, failures: 0, events: [] });
    port.publish(step(1));
    expect(port.recordingProblem()).toBeNull();
    // what a takeover leaves in Redis: the lease held by another instance (it went silent here for a lease)
    const other = new Redis(redis.url, { lazyConnect: true });
    cleanup.push(() => other.quit());
    await other.connect();
    expect(await other.set(`stampede:owner:${port.space.id}`, 'i1', 'PX', 60_000)).toBe('OK');
    let i = 2;
    await expect.poll(() => (port.publish(step(i++)), port.recordingProblem()), { interval: 20, timeout: 10_000 }).toMatch(/^another instance took the space over \(at 20:\d\d\): this replay's own instance, the space's owner, was silent for a whole lease/);
    await port.endSpace();
    expect(await port.recordingAvailable()).toBe(false);
  });

  it('counts every event of the night by kind, for the dashboards\' annotations', async () => {
    const texts = new Set<string>();
    for (const f of ['scenarios/x-spaces-2024-08-12.yaml', 'scenarios/x-spaces-2024-08-12-ddos.yaml']) {
      const r = await runReplay({ scenario: await loadScenario(f, []), seed: 1, speed: 'max', clock: manualClock(0) });
      for (const e of r.events) texts.add(e.text);
    }
    // every kind of event the model reports has a label; a mitigation's own name is never one
    for (const t of texts) expect(simEventKind(t), t).not.toBeNull();
    expect(new Set([...texts].map(simEventKind))).toEqual(new Set(['space_opened', 'join_path_failing', 'join_path_recovered', 'mitigation', 'host_started', 'host_ended']));
    const feed = new ReplayFeed({ scenarioName: 'test', scheduledStartMs: 0, speed: 60, timeZone: 'UTC' });
    const s = await startApp({}, { replay: feed });
    const port = new LiveReplayPort({ server: s.app.server, metrics: s.app.metrics, feed, title: 'replay', hostName: 'host', scheduledStartMs: 0, speed: 60 });
    port.publish({ t: 1000, phase: 'open', listeners: 0, offered: 0, admitted: 0, attack: 0, availability: 1, latencyP50Ms: 1, latencyP99Ms: 1, attempts: 0, failures: 0, events: ['space opened', 'mitigation: admission cap'] });
    expect(await metricValue(s.app, 'stampede_sim_events_total', { event: 'space_opened' })).toBe(1);
    expect(await metricValue(s.app, 'stampede_sim_events_total', { event: 'mitigation' })).toBe(1);
    expect(await metricValue(s.app, 'stampede_sim_events_total', { event: 'host_ended' })).toBe(0);
  });
});
