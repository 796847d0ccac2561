/**
 * The model's fixed-size per-second rings: memory that does not grow with the crowd. Retries due in
 * the coming seconds (one ring per attempt number and room) and the join path's trailing health.
 */

/**
 * Retries due in the coming seconds, as a difference array over a ring: spreading n retries evenly
 * over [lo, hi] seconds from now costs O(1), and the ring's length is fixed by the longest delay,
 * not by how many people are retrying.
 */
export class RetryRing {
  private readonly diff: Float64Array;
  private rate = 0;
  private head = 0;

  constructor(readonly size: number) {
    this.diff = new Float64Array(size + 2);
  }

  /** Adds n retries spread evenly over the seconds [lo, hi] after the current one (1 ≤ lo ≤ hi < size). */
  schedule(n: number, lo: number, hi: number): void {
    if (n <= 0) return;
    const per = n / (hi - lo + 1);
    const len = this.diff.length;
    this.diff[(this.head + lo) % len]! += per;
    this.diff[(this.head + hi + 1) % len]! -= per;
  }

  /** Moves to the next second and returns the retries due in it. */
  advance(): number {
    const len = this.diff.length;
    this.head = (this.head + 1) % len;
    this.rate += this.diff[this.head]!;
    this.diff[this.head] = 0;
    // float drift must not invent negative people
    if (this.rate < 1e-9) this.rate = Math.max(0, this.rate);
    return this.rate;
  }

  /** Everyone scheduled but not yet due (for conservation checks). */
  pending(): number {
    let total = 0;
    let r = this.rate;
    const len = this.diff.length;
    for (let k = 1; k < len; k++) {
      r += this.diff[(this.head + k) % len]!;
      total += Math.max(0, r);
    }
    return total;
  }
}

/** Trailing-window health the conditions look at (one value per second, fixed-size rings). */
export class Window {
  private readonly values: Float64Array;
  private readonly weights: Float64Array;
  private i = 0;
  private n = 0;

  constructor(seconds: number) {
    this.values = new Float64Array(Math.max(1, seconds));
    this.weights = new Float64Array(Math.max(1, seconds));
  }

  push(v: number, w = 1): void {
    this.values[this.i] = v * w;
    this.weights[this.i] = w;
    this.i = (this.i + 1) % this.values.length;
    this.n = Math.min(this.n + 1, this.values.length);
  }

  mean(): number {
    let s = 0;
    let w = 0;
    for (let k = 0; k < this.n; k++) {
      s += this.values[k]!;
      w += this.weights[k]!;
    }
    return w > 0 ? s / w : 1;
  }
}
