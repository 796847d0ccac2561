import { describe, expect, it } from 'vitest';
import { LiveReplayPort, ReplayFeed } from '../../src/replay/index.js';
import type { ReplayStep } from '../../src/sim/index.js';
import { metricValue, useApps } from '../helpers/app.js';

describe('the replay port', () => {
  const startApp = useApps();

  it('counts the modelled crowd in whole joins, carrying the fractions of the flow model', async () => {
    const t0 = Date.UTC(2024, 7, 13, 0, 0, 0);
    const feed = new ReplayFeed({ scenarioName: 'test', scheduledStartMs: t0, speed: 60 });
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
      // never more than a join behind the model
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
});
