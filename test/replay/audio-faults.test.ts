import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { manualClock } from '../../src/clock.js';
import { createReplay } from '../../src/replay/index.js';
import { CALM } from '../helpers/app.js';
import { driveReplay, smallNight } from '../helpers/replay.js';
import { useTempDir } from '../helpers/tmp.js';

/** One room live from 10:01 to 10:12; with `faults`, half its chunks are lost between 10:04 and 10:08. */
function scenario(faults: boolean) {
  return smallNight('lossy audio', { replayUntil: '10:13' }, {
    hostEnd: { afterMinutesLive: 11 },
    ...(faults ? { audio: { faults: [{ room: 'a', from: '10:04', to: '10:08', chunkLoss: 0.5 }] } } : {}),
  });
}

/** Runs the replay on a manual clock with 12 real listeners; returns what they heard and the model's audio gap. */
async function replayWith(faults: boolean, dir: string) {
  const speed = 300;
  const clock = manualClock(Date.UTC(2026, 0, 1));
  const replay = createReplay({ scenario: scenario(faults), seed: 1, speed, clock, logger: pino({ level: 'silent' }), server: { port: 0, host: '127.0.0.1', recordingDir: dir }, loadSignal: CALM, listeners: 12 });
  await replay.start();
  const result = await driveReplay(replay, clock);
  expect(result, 'the replay reached its end').not.toBeNull();
  return { crowd: replay.realCrowd()!, result: result! };
}

describe("a scenario's audio faults reach the real listeners", () => {
  const recordings = useTempDir('stampede-audio-faults-');

  it('real listeners miss chunks while the scenario says chunks are lost, and none without it', async () => {
    const lossy = await replayWith(true, recordings());
    expect(lossy.crowd.chunks).toBeGreaterThan(0);
    expect(lossy.crowd.gaps).toBeGreaterThan(0);
    // the recording keeps every chunk: the loss is between the host's accepted audio and the listeners
    expect(lossy.result.recordingAvailable).toBe(true);

    const clean = await replayWith(false, recordings());
    expect(clean.crowd.chunks).toBeGreaterThan(0);
    expect(clean.crowd.gaps).toBe(0);
  });
});
