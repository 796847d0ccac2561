import { setTimeout as realDelay } from 'node:timers/promises';
import type { ManualClock } from '../../src/clock.js';
import type { Replay } from '../../src/replay/index.js';
import { parseScenario, type ReplayResult, type Scenario } from '../../src/sim/index.js';

/**
 * A small night for replay tests: room a (Host A, @a) opens at 10:00 and goes on air at 10:01, with
 * 100 joins/s for three minutes, ample capacity and patient clients. `event` and `assumptions`
 * override or add to it (the end of the replay, the host's end, crashes, rooms, audio faults).
 */
export function smallNight(name: string, event: Record<string, unknown>, assumptions: Record<string, unknown>): Scenario {
  const doc = {
    event: { name, room: 'a', host: 'Host A', account: '@a', date: '2025-03-01', timeZone: 'UTC', replayFrom: '10:00', opensAt: '10:00', scheduledStart: '10:01', ...event },
    assumptions: {
      demand: { keyframes: [{ at: '10:00', perSecond: 100 }, { at: '10:03', perSecond: 0 }], noise: 0 },
      capacity: { keyframes: [{ at: '10:00', joinsPerSecond: 1e6 }] },
      clients: { retry: { policy: 'jittered', baseSeconds: 2, capSeconds: 20, maxAttempts: 10 }, giveUpProbability: 0.05, sessionMinutes: 600 },
      hostStart: { when: { forMinutes: 0 } },
      ...assumptions,
    },
  };
  return parseScenario(JSON.stringify(doc), `${name.replace(/\W+/g, '-')}.json`);
}

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
