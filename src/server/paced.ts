/**
 * Work over many sockets, paced across event-loop turns (docs/reliability.md #15): at most `perTurn` items
 * between two of our turns, the rest in later ones (`defer`: setImmediate, which runs after the I/O of the
 * loop iteration; the timers and the next I/O run before the one after). A fan-out to 700 listeners is 700
 * write system calls, 25–70 ms on a busy 2-core machine, and 300 listeners arriving together are 300
 * joins and upgrades; done as they came, with the count broadcast beside them, the loop stalled for
 * 120–190 ms. Paced, one loop iteration does at most about twice `perTurn` items of one queue (some as
 * they come, the rest in our turn), whatever the crowd.
 *
 * Jobs run in the order they were submitted (a listener hears chunks in order). A job that fits what is
 * left of the budget, with nothing queued before it, is done before `submit` returns, so a small room or
 * a lone join behaves exactly as unpaced code would.
 */
export interface PacedJob {
  /** Items in the job (listeners to write to; 1 for a join). */
  readonly size: number;
  /** The next item to do; the queue advances it. */
  next: number;
}

export class PacedQueue<J extends PacedJob> {
  private readonly jobs: J[] = [];
  private head = 0;
  /** Items done since our last turn. */
  private used = 0;
  private scheduled = false;
  private running = false;

  constructor(
    private readonly perTurn: number,
    /** Does items [from, to) of a job. */
    private readonly run: (job: J, from: number, to: number) => void,
    /** A job's last item is done. */
    private readonly done: (job: J) => void,
    /** Runs `fn` in a later turn of the event loop. */
    private readonly defer: (fn: () => void) => void = (fn) => void setImmediate(fn),
  ) {}

  /** Jobs not finished yet. */
  get pending(): number {
    return this.jobs.length - this.head;
  }

  /** Whether a job of `size` items submitted now would be done before `submit` returns. */
  fitsNow(size: number): boolean {
    return this.pending === 0 && !this.running && this.used + size <= this.perTurn;
  }

  submit(job: J): void {
    this.jobs.push(job);
    // something queued before it: it waits its turn (order); otherwise it starts on what is left of the budget
    if (this.pending === 1 && !this.running) this.step(this.perTurn - this.used);
    this.schedule();
  }

  /** Finishes every queued job now, in order (a space ending: its last chunks go out before the close). */
  drain(): void {
    this.step(Infinity);
  }

  private schedule(): void {
    // our turn also starts a fresh budget, so it is due whenever anything was done or is waiting
    if (this.scheduled || (this.used === 0 && this.pending === 0)) return;
    this.scheduled = true;
    this.defer(this.turn);
  }

  private readonly turn = (): void => {
    this.scheduled = false;
    this.used = 0;
    if (this.pending === 0) return;
    this.step(this.perTurn);
    this.schedule();
  };

  private step(budget: number): void {
    if (this.running || budget <= 0) return;
    this.running = true;
    try {
      while (budget > 0 && this.head < this.jobs.length) {
        const job = this.jobs[this.head]!;
        const from = job.next;
        const to = Math.min(job.size, from + budget);
        job.next = to;
        budget -= to - from;
        this.used += to - from;
        this.run(job, from, to);
        if (job.next >= job.size) {
          this.jobs[this.head++] = undefined as unknown as J;
          this.done(job);
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
