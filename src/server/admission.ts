import type { Clock } from '../clock.js';

/** The answer of a bucket with a token: one frozen object, not one per join. */
const TOKEN_THERE: { readonly ok: true } = Object.freeze({ ok: true });

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

  /**
   * Whether a token is there now beyond the `claimed` ones others will take, or how long until one is
   * due (ms); takes nothing.
   */
  peek(claimed = 0): { ok: true } | { ok: false; retryAfterMs: number } {
    this.refill();
    const need = 1 + claimed;
    if (this.tokens >= need) return TOKEN_THERE;
    return { ok: false, retryAfterMs: Math.ceil(((need - this.tokens) / this.rate) * 1000) };
  }

  /** Takes a token, or returns how long until one is due (ms). */
  take(): { ok: true } | { ok: false; retryAfterMs: number } {
    const r = this.peek();
    if (r.ok) this.tokens -= 1;
    return r;
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

/**
 * Readings the shedder decides on; the server samples the real process (src/guard/lag.ts), tests pass
 * their own. RSS and memory outside the heap are optional for a test that only plays with lag.
 */
export interface LoadSignal {
  eventLoopLagMs(): number;
  heapUsedBytes(): number;
  rssBytes?(): number;
  externalBytes?(): number;
}

export type ShedReason = 'event_loop_lag' | 'memory';

export interface ShedLimits {
  maxLagMs: number;
  maxHeapBytes: number;
  maxRssBytes: number;
  maxExternalBytes: number;
}

export interface ShedReadings {
  lagMs: number;
  heapBytes: number;
  rssBytes: number;
  externalBytes: number;
}

export class Shedder {
  private last: ShedReason | null = null;

  constructor(
    private readonly signal: LoadSignal,
    private readonly limits: ShedLimits,
    /** Called when shedding starts, changes reason or stops: one log line per change, not per refusal. */
    private readonly onChange?: (reason: ShedReason | null, at: ShedReadings) => void,
  ) {}

  /** Why the server should shed right now, or null. Memory counts the heap, RSS and what lives outside the heap (docs/reliability.md #22). */
  reason(): ShedReason | null {
    const s = this.signal;
    const lagMs = s.eventLoopLagMs();
    const heapBytes = s.heapUsedBytes();
    const rssBytes = s.rssBytes?.() ?? 0;
    const externalBytes = s.externalBytes?.() ?? 0;
    const l = this.limits;
    const r: ShedReason | null = lagMs > l.maxLagMs ? 'event_loop_lag' : heapBytes > l.maxHeapBytes || rssBytes > l.maxRssBytes || externalBytes > l.maxExternalBytes ? 'memory' : null;
    if (r !== this.last) {
      this.last = r;
      this.onChange?.(r, { lagMs, heapBytes, rssBytes, externalBytes });
    }
    return r;
  }
}
