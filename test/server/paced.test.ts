import { describe, expect, it } from 'vitest';
import { PacedQueue, type PacedJob } from '../../src/server/paced.js';

/** A job whose items are named `<name><i>`; the log says what ran, in order. */
interface Job extends PacedJob {
  name: string;
}

/** A queue whose later turns run only when the test says so (no timers, no sleeps). */
function paced(perTurn: number) {
  const log: string[] = [];
  const finished: string[] = [];
  const deferred: (() => void)[] = [];
  const q = new PacedQueue<Job>(
    perTurn,
    (job, from, to) => {
      for (let i = from; i < to; i++) log.push(`${job.name}${i}`);
    },
    (job) => finished.push(job.name),
    (fn) => deferred.push(fn),
  );
  const job = (name: string, size: number): Job => ({ name, size, next: 0 });
  /** Runs the turns deferred so far (one loop iteration's check phase). */
  const nextTurn = (): void => {
    for (const fn of deferred.splice(0)) fn();
  };
  return { q, log, finished, deferred, job, nextTurn };
}

describe('PacedQueue (the server paces fan-out writes and arrivals across event-loop turns)', () => {
  it('does a job that fits the budget at once, like unpaced code', () => {
    const { q, log, finished, job } = paced(4);
    q.submit(job('a', 3));
    expect(log).toEqual(['a0', 'a1', 'a2']);
    expect(finished).toEqual(['a']);
    expect(q.pending).toBe(0);
  });

  it('splits a big job over turns, at most the budget per turn', () => {
    const { q, log, finished, job, nextTurn } = paced(4);
    q.submit(job('a', 10));
    expect(log).toEqual(['a0', 'a1', 'a2', 'a3']);
    expect(finished).toEqual([]);
    nextTurn();
    expect(log).toHaveLength(8);
    nextTurn();
    expect(log).toEqual(Array.from({ length: 10 }, (_, i) => `a${i}`));
    expect(finished).toEqual(['a']);
    expect(q.pending).toBe(0);
  });

  it('counts every item done before our turn, so many small arrivals in one turn are paced too', () => {
    const { q, log, job, nextTurn } = paced(3);
    for (let i = 0; i < 8; i++) q.submit(job(`j${i}-`, 1));
    // three as they came; the other five wait, in order
    expect(log).toEqual(['j0-0', 'j1-0', 'j2-0']);
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

  it('keeps submission order across jobs: a later job never overtakes an earlier one', () => {
    const { q, log, finished, job, nextTurn } = paced(4);
    q.submit(job('a', 6));
    q.submit(job('b', 1));
    expect(log).toEqual(['a0', 'a1', 'a2', 'a3']);
    nextTurn();
    expect(log).toEqual(['a0', 'a1', 'a2', 'a3', 'a4', 'a5', 'b0']);
    expect(finished).toEqual(['a', 'b']);
  });

  it('starts a fresh budget at each turn, and says whether a job would be done at once', () => {
    const { q, log, job, nextTurn, deferred } = paced(4);
    q.submit(job('a', 3));
    expect(q.fitsNow(1)).toBe(true);
    expect(q.fitsNow(2)).toBe(false);
    q.submit(job('b', 2));
    expect(log).toEqual(['a0', 'a1', 'a2', 'b0']);
    nextTurn();
    expect(log).toEqual(['a0', 'a1', 'a2', 'b0', 'b1']);
    // our turn after that one finds nothing waiting and schedules nothing more
    nextTurn();
    expect(deferred).toHaveLength(0);
    expect(q.fitsNow(4)).toBe(true);
    q.submit(job('c', 4));
    expect(log.slice(5)).toEqual(['c0', 'c1', 'c2', 'c3']);
  });

  it('drain finishes everything queued now, in order (a space ending)', () => {
    const { q, log, finished, job, nextTurn } = paced(2);
    q.submit(job('a', 5));
    q.submit(job('b', 2));
    q.drain();
    expect(log).toEqual(['a0', 'a1', 'a2', 'a3', 'a4', 'b0', 'b1']);
    expect(finished).toEqual(['a', 'b']);
    nextTurn();
    expect(log).toHaveLength(7);
  });

  it('a job submitted while one is running waits for the running one (no reentry)', () => {
    const log: string[] = [];
    const deferred: (() => void)[] = [];
    let q!: PacedQueue<Job>;
    q = new PacedQueue<Job>(
      10,
      (job, from, to) => {
        for (let i = from; i < to; i++) {
          log.push(`${job.name}${i}`);
          if (job.name === 'a' && i === 0) q.submit({ name: 'b', size: 1, next: 0 });
        }
      },
      () => undefined,
      (fn) => deferred.push(fn),
    );
    q.submit({ name: 'a', size: 2, next: 0 });
    expect(log).toEqual(['a0', 'a1', 'b0']);
  });
});
