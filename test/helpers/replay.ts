import { setTimeout as realDelay } from 'node:timers/promises';
import type { ManualClock } from '../../src/clock.js';
import type { Replay } from '../../src/replay/index.js';
import type { ReplayResult } from '../../src/sim/index.js';

/** One step of a replay's manual clock: 20 ms of it, then a few real milliseconds for the sockets. */
export async function replayStep(clock: ManualClock): Promise<void> {
  await clock.advance(20);
  await realDelay(2);
}

/**
 * Drives a started replay on its manual clock until it finishes: the clock moves only here, 20 ms at a
 * time, with a few real milliseconds between steps for the sockets. `each(step)` runs after every step
 * (a test's polls). Resolves with the replay's result, or null when it did not finish within `maxSteps`.
 */
export async function driveReplay(replay: Replay, clock: ManualClock, each?: (step: number, done: () => boolean) => Promise<void> | void, maxSteps = 2_000): Promise<ReplayResult | null> {
  let result: ReplayResult | null = null;
  void replay.finished.then((r) => (result = r));
  const done = (): boolean => result !== null;
  for (let i = 0; !done() && i < maxSteps; i++) {
    await replayStep(clock);
    await each?.(i, done);
  }
  return result;
}
