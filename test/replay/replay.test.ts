import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { manualClock } from '../../src/clock.js';
import { createReplay } from '../../src/replay/index.js';
import { loadScenario } from '../../src/sim/index.js';
import { CALM } from '../helpers/app.js';
import { driveReplay } from '../helpers/replay.js';
import { useTempDir } from '../helpers/tmp.js';

const DEFAULT = 'scenarios/x-spaces-2024-08-12.yaml';
describe('createReplay', () => {
  const recordings = useTempDir('stampede-replay-rec-');

  it('replays with the server live and real listeners that feel the outage, then publishes the recording', async () => {
    // half an hour on air: 95 simulated minutes at 900× are 6.3 s of the manual clock
    const scenario = await loadScenario(DEFAULT, ['event.replayUntil=21:20', 'assumptions.hostEnd.afterMinutesLive=30']);
    const clock = manualClock(Date.UTC(2026, 0, 1));
    const replay = createReplay({
      scenario,
      seed: 1,
      speed: 900,
      clock,
      logger: pino({ level: 'silent' }),
      server: { port: 0, host: '127.0.0.1', recordingDir: recordings() },
      loadSignal: CALM,
      listeners: 30,
    });
    const started = await replay.start();
    expect(started.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    let sawFailing = false;
    let sawMetrics = false;
    const result = await driveReplay(replay, clock, async (i, done) => {
      if (i % 50 !== 10 || sawMetrics || done()) return;
      const metrics = await (await fetch(`${started.url}/metrics`)).text();
      sawMetrics = /^stampede_sim_time_seconds [1-9]/m.test(metrics);
      const status = (await (await fetch(`${started.url}/api/v1/replay`)).json()) as { replay: { running: boolean; spaceId: string; phase: string } };
      expect(status.replay).toMatchObject({ running: true, spaceId: started.spaceId });
      sawFailing ||= status.replay.phase === 'failing';
    });
    expect(result, 'the replay reached its end').not.toBeNull();
    const r = result!;
    expect(sawMetrics).toBe(true);
    expect(r.recordingAvailable).toBe(true);
    expect(Math.max(...r.series.map((s) => s.realListeners))).toBeGreaterThan(0);
    // while the model says the join path fails, real clients are refused too
    const failingReal = r.series.filter((s) => s.phase === 'failing' && s.realAvailability !== null).map((s) => s.realAvailability!);
    expect(failingReal.length).toBeGreaterThan(0);
    expect(Math.min(...failingReal)).toBeLessThan(0.5);
    // everything is stopped: the server no longer answers
    await expect(fetch(`${started.url}/healthz`)).rejects.toThrow();
  });
});
