import { describe, expect, it } from 'vitest';
import { PacedQueue, type PacedJob } from '../../src/server/paced.js';

/** A job whose items are named `<name><i>` and each take `cost` ms of the fake clock; the log says what ran, in order. */
interface Job extends PacedJob {
  name: string;
  cost: number;
}

/**
 * A queue on a fake clock that moves only while items run (each by its job's cost), whose later turns run
 * only when the test says so: no timers, no sleeps.
 */
function paced(o: { ms: number; items?: number; checkEvery?: number; refreshMs?: number }) {
  const log: string[] = [];
  const finished: string[] = [];
  const parked: string[] = [];
  const deferred: (() => void)[] = [];
  const clock = { t: 1_000 };
  const q = new PacedQueue<Job>({
    ms: o.ms,
    items: o.items ?? 1_000,
    checkEvery: o.checkEvery ?? 1,
    now: () => clock.t,
    run: (job, from, to) => {
      for (let i = from; i < to; i++) {
        log.push(`${job.name}${i}`);
        clock.t += job.cost;
      }
    },
    done: (job) => finished.push(job.name),
    park: (job) => parked.push(`${job.name}@${job.next}`),
    defer: (fn) => deferred.push(fn),
    ...(o.refreshMs === undefined ? {} : { refreshMs: o.refreshMs }),
  });
  const job = (name: string, size: number, cost = 1): Job => ({ name, size, cost, next: 0 });
  /** Runs the turns deferred so far (one loop iteration's check phase). */
  const nextTurn = (): void => {
    for (const fn of deferred.splice(0)) fn();
  };
  return { q, log, finished, parked, deferred, clock, job, nextTurn };
}

const names = (name: string, from: number, to: number): string[] => Array.from({ length: to - from }, (_, i) => `${name}${from + i}`);

describe('PacedQueue (the server paces fan-out writes and arrivals across event-loop turns, by time)', () => {
  it('does a job that fits the time budget at once, like unpaced code, and parks nothing', () => {
    const { q, log, finished, parked, job } = paced({ ms: 4 });
    q.submit(job('a', 3));
    expect(log).toEqual(['a0', 'a1', 'a2']);
    expect(finished).toEqual(['a']);
    expect(parked).toEqual([]);
    expect(q.pending).toBe(0);
  });

  it('splits a big job over turns: items run until the turn\'s milliseconds have passed', () => {
    const { q, log, finished, parked, job, nextTurn } = paced({ ms: 4 });
    q.submit(job('a', 10));
    // 1 ms each: the fourth item uses the budget up
    expect(log).toEqual(names('a', 0, 4));
    expect(finished).toEqual([]);
    // left unfinished by submit: parked once, where it stopped
    expect(parked).toEqual(['a@4']);
    nextTurn();
    expect(log).toEqual(names('a', 0, 8));
    nextTurn();
    expect(log).toEqual(names('a', 0, 10));
    expect(finished).toEqual(['a']);
    expect(parked).toEqual(['a@4']);
    expect(q.pending).toBe(0);
  });

  it('takes many cheap items a turn and few dear ones: the budget is time, not a count', () => {
    const cheap = paced({ ms: 4 });
    cheap.q.submit(cheap.job('c', 100, 0.125));
    expect(cheap.log).toHaveLength(32);
    const dear = paced({ ms: 4 });
    dear.q.submit(dear.job('d', 100, 3));
    // the first item leaves 1 ms, so a second runs; the budget is then used
    expect(dear.log).toEqual(['d0', 'd1']);
    dear.nextTurn();
    expect(dear.log).toHaveLength(4);
  });

  it('reads the clock every `checkEvery` items, so a turn overshoots by less than one batch', () => {
    const { q, log, job, nextTurn } = paced({ ms: 4, checkEvery: 3 });
    q.submit(job('a', 20));
    // 3 ms after the first batch (under 4), 6 ms after the second: six items
    expect(log).toEqual(names('a', 0, 6));
    nextTurn();
    expect(log).toEqual(names('a', 0, 12));
  });

  it('never runs more than `items` between two turns, even when the clock does not move', () => {
    const { q, log, job, nextTurn } = paced({ ms: 4, items: 3, checkEvery: 2 });
    q.submit(job('a', 8, 0));
    expect(log).toEqual(names('a', 0, 3));
    nextTurn();
    expect(log).toEqual(names('a', 0, 6));
    nextTurn();
    expect(log).toEqual(names('a', 0, 8));
  });

  it('counts the time of every item done before our turn, so many small arrivals in one turn are paced too', () => {
    const { q, log, parked, job, nextTurn } = paced({ ms: 3 });
    for (let i = 0; i < 8; i++) q.submit(job(`j${i}-`, 1));
    // three as they came (3 ms); the other five wait, in order, each parked as it was submitted
    expect(log).toEqual(['j0-0', 'j1-0', 'j2-0']);
    expect(parked).toEqual(['j3-@0', 'j4-@0', 'j5-@0', 'j6-@0', 'j7-@0']);
    expect(q.pending).toBe(5);
    nextTurn();
    expect(log).toEqual(['j0-0', 'j1-0', 'j2-0', 'j3-0', 'j4-0', 'j5-0']);
    // a new arrival after our turn has used the budget waits behind the queue
    q.submit(job('late', 1));
    expect(log).toHaveLength(6);
    nextTurn();
    expect(log.slice(6)).toEqual(['j6-0', 'j7-0', 'late0']);
    expect(q.pending).toBe(0);
  });

  it('counts only the time its own items take: time passing between arrivals uses none of the budget', () => {
    const { q, log, clock, job } = paced({ ms: 3 });
    for (let i = 0; i < 5; i++) {
      q.submit(job(`j${i}-`, 1, 0.5));
      // other work of the loop iteration (reading requests, timers)
      clock.t += 10;
    }
    expect(log).toEqual(['j0-0', 'j1-0', 'j2-0', 'j3-0', 'j4-0']);
    expect(q.pending).toBe(0);
  });

  it('keeps submission order across jobs: a later job never overtakes an earlier one', () => {
    const { q, log, finished, job, nextTurn } = paced({ ms: 4 });
    q.submit(job('a', 6));
    q.submit(job('b', 1));
    expect(log).toEqual(names('a', 0, 4));
    nextTurn();
    expect(log).toEqual([...names('a', 0, 6), 'b0']);
    expect(finished).toEqual(['a', 'b']);
  });

  it('starts a fresh budget at each turn and schedules nothing once idle', () => {
    const { q, log, job, nextTurn, deferred } = paced({ ms: 4 });
    q.submit(job('a', 3));
    q.submit(job('b', 2));
    expect(log).toEqual(['a0', 'a1', 'a2', 'b0']);
    nextTurn();
    expect(log).toEqual(['a0', 'a1', 'a2', 'b0', 'b1']);
    // our turn after that one finds nothing waiting and schedules nothing more
    nextTurn();
    expect(deferred).toHaveLength(0);
    q.submit(job('c', 4));
    expect(log.slice(5)).toEqual(['c0', 'c1', 'c2', 'c3']);
  });

  it('drain finishes everything queued now, in order, whatever the budget (a space ending)', () => {
    const { q, log, finished, job, nextTurn } = paced({ ms: 2 });
    q.submit(job('a', 5));
    q.submit(job('b', 2));
    q.drain();
    expect(log).toEqual([...names('a', 0, 5), 'b0', 'b1']);
    expect(finished).toEqual(['a', 'b']);
    nextTurn();
    expect(log).toHaveLength(7);
  });

  it('a job submitted while one is running waits for the running one (no reentry)', () => {
    const log: string[] = [];
    let q!: PacedQueue<Job>;
    q = new PacedQueue<Job>({
      ms: 10,
      items: 10,
      checkEvery: 1,
      now: () => 0,
      run: (job, from, to) => {
        for (let i = from; i < to; i++) {
          log.push(`${job.name}${i}`);
          if (job.name === 'a' && i === 0) q.submit({ name: 'b', size: 1, cost: 0, next: 0 });
        }
      },
      done: () => undefined,
      defer: () => undefined,
    });
    q.submit({ name: 'a', size: 2, cost: 0, next: 0 });
    expect(log).toEqual(['a0', 'a1', 'b0']);
  });

  it('without refreshMs a long turn still gives one budget: what is queued waits for our turn', () => {
    const { q, log, clock, job, nextTurn } = paced({ ms: 4, items: 2 });
    q.submit(job('a', 1, 0.1));
    q.submit(job('b', 1, 0.1));
    q.submit(job('c', 1, 0.1));
    // the rest of a long loop iteration: other work (a flood of refusals) takes 100 ms
    clock.t += 100;
    q.submit(job('d', 1, 0.1));
    q.pump();
    expect(log).toEqual(['a0', 'b0']);
    nextTurn();
    expect(log).toEqual(['a0', 'b0', 'c0', 'd0']);
  });

  it('with refreshMs a long turn gives a fresh budget every refreshMs: admissions keep pace while other work makes turns long', () => {
    // the admission queue's settings in small: 2 a budget, a fresh one every 8 ms within a turn
    const { q, log, clock, job, nextTurn } = paced({ ms: 4, items: 2, refreshMs: 8 });
    q.submit(job('a', 1, 0.1));
    q.submit(job('b', 1, 0.1));
    q.submit(job('c', 1, 0.1));
    expect(log).toEqual(['a0', 'b0']);
    // 5 ms of other work: the budget is not 8 ms old yet, c waits
    clock.t += 5;
    q.submit(job('d', 1, 0.1));
    q.pump();
    expect(log).toEqual(['a0', 'b0']);
    // 8 ms since the budget began: the next arrival finds a fresh one and runs what waits, in order
    clock.t += 3;
    q.submit(job('e', 1, 0.1));
    expect(log).toEqual(['a0', 'b0', 'c0', 'd0']);
    // no arrival comes (every join of the flood is refused), the turn goes on: pump, called at each
    // refusal, takes the next budget when it is due
    clock.t += 2;
    q.pump();
    expect(log).toEqual(['a0', 'b0', 'c0', 'd0']);
    clock.t += 6.5;
    q.pump();
    expect(log).toEqual(['a0', 'b0', 'c0', 'd0', 'e0']);
    // what is left of that budget goes to the next arrival; our turn starts a fresh budget and the clock of the next refresh
    q.submit(job('f', 5, 0.1));
    expect(log.slice(5)).toEqual(['f0']);
    nextTurn();
    expect(log.slice(5)).toEqual(['f0', 'f1', 'f2']);
    clock.t += 7;
    q.pump();
    expect(log).toHaveLength(8);
    clock.t += 1;
    q.pump();
    expect(log.slice(5)).toEqual(['f0', 'f1', 'f2', 'f3', 'f4']);
  });

  it('with refreshMs the queue still takes at most `ms` of each refreshMs of a turn: dear items wait for the next budget', () => {
    const { q, log, clock, job } = paced({ ms: 4, items: 100, refreshMs: 8 });
    // 3 ms each: the second uses the 4 ms up
    q.submit(job('a', 5, 3));
    expect(log).toEqual(['a0', 'a1']);
    clock.t += 1;
    q.pump();
    expect(log).toEqual(['a0', 'a1']);
    clock.t += 1;
    q.pump();
    expect(log).toEqual(['a0', 'a1', 'a2', 'a3']);
  });
});
