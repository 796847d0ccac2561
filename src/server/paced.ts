/**
 * Work over many sockets, paced across event-loop turns by time (docs/reliability.md #15): between two of
 * our turns, items run until `ms` milliseconds of them have passed on the injected clock (read every
 * `checkEvery` items) or `items` of them are done, whichever comes first; the rest go in later turns
 * (`defer`: setImmediate, which runs after the I/O of the loop iteration; the timers and the next I/O run
 * before the one after). A fan-out to 700 listeners is 700 write system calls, 25–70 ms on a busy 2-core
 * machine, and 300 listeners arriving together are 300 joins and upgrades; done as they came, with the
 * count broadcast beside them, the loop stalled for 120–190 ms. Paced, one loop iteration spends about
 * twice `ms` (plus one batch) on one queue's items (some as they come, the rest in our turn), whatever the
 * crowd. Which bound binds is the caller's choice: the fan-out's is time (`fanoutTurnMs`; its count is
 * only a ceiling), the admissions' is the count (`admissionsPerTurn`; paced by time alone, joins were
 * admitted faster than their pipelined refusals were read and the loop stalled: config.ts, docs/bench.md).
 *
 * Jobs run in the order they were submitted (a listener hears chunks in order). A job submitted with
 * nothing queued before it, while the budget since our last turn is not used up, starts before `submit`
 * returns, so a small room or a lone join behaves exactly as unpaced code would; a job not finished when
 * `submit` returns is handed to `park` (it will run in a later turn: keep what it needs).
 */
export interface PacedJob {
  /** Items in the job (listeners to write to; 1 for a join). */
  readonly size: number;
  /** The next item to do; the queue advances it. */
  next: number;
}

export interface PaceOptions<J extends PacedJob> {
  /** Most items between two of our turns, whatever the clock says (an upper bound on a turn). */
  items: number;
  /** Milliseconds of items (on `now`) between two of our turns. */
  ms: number;
  /** Items done between two readings of the clock: 1 for items that cost tens of µs, more for µs-sized ones. */
  checkEvery: number;
  /** Monotonic milliseconds (the app clock's `monotonic`). */
  now: () => number;
  /** Does items [from, to) of a job. */
  run: (job: J, from: number, to: number) => void;
  /** A job's last item is done. */
  done: (job: J) => void;
  /** A job that `submit` leaves unfinished: it runs in later turns, after what the caller may change meanwhile. */
  park?: (job: J) => void;
  /** Runs `fn` in a later turn of the event loop. */
  defer?: (fn: () => void) => void;
  /**
   * Within one long turn of the event loop, a budget that began `refreshMs` ago (on `now`) starts afresh
   * at the next `submit` or `pump`, so this queue's items may take up to `ms` of every `refreshMs` of a
   * turn that other work keeps long. Without it (the default, Infinity) a queue gets one budget per turn:
   * admissions paced at 16 a turn fell below the join rate once a flood of refusals made turns long
   * (docs/bench.md, Graceful overload, session 12).
   */
  refreshMs?: number;
}

export class PacedQueue<J extends PacedJob> {
  private readonly jobs: J[] = [];
  private head = 0;
  /** Items done, and milliseconds spent on them, since our last turn. */
  private used = 0;
  private spent = 0;
  private scheduled = false;
  private running = false;
  /** When the budget began (on `now`; read only with a finite `refreshMs`). */
  private since = 0;
  private readonly o: Required<PaceOptions<J>>;

  constructor(options: PaceOptions<J>) {
    this.o = { park: () => undefined, defer: (fn) => void setImmediate(fn), refreshMs: Infinity, ...options };
    if (this.o.refreshMs !== Infinity) this.since = this.o.now();
  }

  /** Jobs not finished yet. */
  get pending(): number {
    return this.jobs.length - this.head;
  }

  submit(job: J): void {
    this.jobs.push(job);
    // something queued before it: it waits its turn (order), or for a fresh budget within a long turn;
    // otherwise it starts on what is left of the budget
    if (!this.running && (this.refresh() || this.pending === 1)) this.step(false);
    if (job.next < job.size) this.o.park(job);
    this.schedule();
  }

  /**
   * With `refreshMs`: when the budget began that long ago and jobs wait, starts a fresh budget and runs
   * what it allows now, in order. The caller calls it where a long turn passes by (a refused arrival).
   */
  pump(): void {
    if (!this.running && this.pending > 0 && this.refresh()) this.step(false);
  }

  /** Starts a fresh budget if the current one began `refreshMs` ago; whether it did. */
  private refresh(): boolean {
    if (this.o.refreshMs === Infinity) return false;
    const t = this.o.now();
    if (t - this.since < this.o.refreshMs) return false;
    this.since = t;
    this.used = 0;
    this.spent = 0;
    return true;
  }

  /** Finishes every queued job now, in order (a space ending: its last chunks go out before the close). */
  drain(): void {
    this.step(true);
  }

  private schedule(): void {
    // our turn also starts a fresh budget, so it is due whenever anything was done or is waiting
    if (this.scheduled || (this.used === 0 && this.spent === 0 && this.pending === 0)) return;
    this.scheduled = true;
    this.o.defer(this.turn);
  }

  private readonly turn = (): void => {
    this.scheduled = false;
    this.used = 0;
    this.spent = 0;
    if (this.o.refreshMs !== Infinity) this.since = this.o.now();
    if (this.pending === 0) return;
    this.step(false);
    this.schedule();
  };

  /** Runs jobs from the head until the budget since our last turn is used (or, `all`, until none is left). */
  private step(all: boolean): void {
    if (this.running) return;
    const { items, ms, checkEvery, now, run, done } = this.o;
    this.running = true;
    try {
      let t = now();
      while (this.head < this.jobs.length && (all || (this.used < items && this.spent < ms))) {
        const job = this.jobs[this.head]!;
        const from = job.next;
        const to = all ? job.size : Math.min(job.size, from + Math.min(checkEvery, items - this.used));
        job.next = to;
        this.used += to - from;
        run(job, from, to);
        const t1 = now();
        this.spent += t1 - t;
        t = t1;
        if (job.next >= job.size) {
          this.jobs[this.head++] = undefined as unknown as J;
          done(job);
        }
      }
      if (this.head === this.jobs.length) {
        this.jobs.length = 0;
        this.head = 0;
      }
    } finally {
      this.running = false;
    }
  }
}
