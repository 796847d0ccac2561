/**
 * The one source of time for every long-lived part. Production uses systemClock(); tests pass a
 * manual clock so that time-dependent behaviour is driven, never waited for.
 */
export interface Clock {
  /** Milliseconds since the Unix epoch. */
  now(): number;
  /**
   * Milliseconds on a monotonic clock with an arbitrary origin, fractional (performance.now in production):
   * how long work took, e.g. a paced queue's time budget per event-loop turn.
   */
  monotonic(): number;
  /**
   * Resolves after `ms` milliseconds of this clock's time (immediately when ms <= 0), or as soon as
   * `signal` aborts, so a periodic loop can be stopped without waiting out its interval.
   */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
  /**
   * Lets the event loop go round once (the timers and I/O that came due run) before the caller goes on:
   * what a paced loop that is behind its schedule awaits between its catch-up steps, where sleep(≤ 0)
   * would resolve without letting anything else run.
   */
  turn(): Promise<void>;
}

/**
 * The slot a periodic task waits for next, on the grid `t0 + k·periodMs` (so a slow run does not push every
 * later one back): the first slot after `k` that is still ahead of `now`. A task whose one run covers all that
 * happened since the last (a heartbeat, a lease renewal, a report of counts, a sample) skips the slots it
 * missed after a stall or on a busy machine, instead of making them up back to back: `sleep(≤ 0)` resolves
 * without letting timers and I/O run, and a heartbeat run twice in a row ends every peer whose pong is not
 * back yet. (A loop whose every step is work of its own — a replay's steps, a host's audio chunks — makes up
 * the steps it is late for one `turn()` apart instead.)
 */
export function nextSlot(t0: number, periodMs: number, k: number, now: number): number {
  return Math.max(k + 1, Math.floor((now - t0) / periodMs) + 1);
}

export function systemClock(): Clock {
  return {
    now: () => Date.now(),
    monotonic: () => performance.now(),
    sleep: (ms, signal) => {
      if (ms <= 0 || signal?.aborted) return Promise.resolve();
      return new Promise<void>((resolve) => {
        const done = (): void => {
          clearTimeout(timer);
          signal?.removeEventListener('abort', done);
          resolve();
        };
        const timer = setTimeout(done, ms);
        signal?.addEventListener('abort', done, { once: true });
      });
    },
    turn: () => new Promise<void>((resolve) => setImmediate(resolve)),
  };
}

/** A clock that only moves when told to. Sleepers wake in deadline order as time passes them. */
export interface ManualClock extends Clock {
  advance(ms: number): Promise<void>;
  set(ms: number): Promise<void>;
}

export function manualClock(startMs = 0): ManualClock {
  let now = startMs;
  const sleepers: { at: number; resolve: () => void }[] = [];
  const wake = async (): Promise<void> => {
    for (;;) {
      sleepers.sort((a, b) => a.at - b.at);
      const next = sleepers[0];
      if (!next || next.at > now) return;
      sleepers.shift();
      next.resolve();
      // let the woken task run (and perhaps sleep again) before the next one wakes
      await new Promise<void>((r) => setImmediate(r));
    }
  };
  return {
    now: () => now,
    // moves only when told, with `now`: work takes no time on it
    monotonic: () => now,
    sleep: (ms, signal) => {
      if (ms <= 0 || signal?.aborted) return Promise.resolve();
      return new Promise<void>((resolve) => {
        const onAbort = (): void => {
          const i = sleepers.indexOf(entry);
          if (i >= 0) sleepers.splice(i, 1);
          resolve();
        };
        // a sleeper woken by time lets go of the signal, so a long-lived signal collects no listeners
        const entry = { at: now + ms, resolve: () => (signal?.removeEventListener('abort', onAbort), resolve()) };
        sleepers.push(entry);
        signal?.addEventListener('abort', onAbort, { once: true });
      });
    },
    // work takes no time on it, so a loop is behind only when a test jumps the clock: advance() catches it
    // up before it returns, as it promises, rather than leaving the catch-up to later turns
    turn: () => Promise.resolve(),
    advance: async (ms) => {
      now += ms;
      await wake();
    },
    set: async (ms) => {
      now = ms;
      await wake();
    },
  };
}
