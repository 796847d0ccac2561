import type { Clock } from '../clock.js';

/** A token bucket on join calls: `rate` tokens per second up to `burst`, refilled lazily from the clock. */
export class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(
    private readonly clock: Clock,
    private readonly rate: number,
    private readonly burst: number,
  ) {
    this.tokens = burst;
    this.last = clock.now();
  }

  private refill(): void {
    const now = this.clock.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.rate);
    this.last = now;
  }

  /** Takes a token, or returns how long until one is due (ms). */
  take(): { ok: true } | { ok: false; retryAfterMs: number } {
    this.refill();
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return { ok: true };
    }
    return { ok: false, retryAfterMs: Math.ceil(((1 - this.tokens) / this.rate) * 1000) };
  }
}

/** What the replay's crowd model says about the join path right now. */
export interface JoinGate {
  /** Probability that a join succeeds, 0..1. */
  availability: number;
  /** Modelled join latency (ms) that a real client should feel. */
  latencyMs: number;
}

export const OPEN_GATE: JoinGate = { availability: 1, latencyMs: 0 };

/** Readings the shedder decides on; the server samples the real event loop, tests pass their own. */
export interface LoadSignal {
  eventLoopLagMs(): number;
  heapUsedBytes(): number;
}

export class Shedder {
  constructor(
    private readonly signal: LoadSignal,
    private readonly maxLagMs: number,
    private readonly maxHeapBytes: number,
  ) {}

  /** Why the server should shed right now, or null. */
  reason(): 'event_loop_lag' | 'memory' | null {
    if (this.signal.eventLoopLagMs() > this.maxLagMs) return 'event_loop_lag';
    if (this.signal.heapUsedBytes() > this.maxHeapBytes) return 'memory';
    return null;
  }
}
