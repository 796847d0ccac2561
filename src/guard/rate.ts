import type { MessageRateKind } from '../config.js';

export interface Rate {
  perSecond: number;
  burst: number;
}

/**
 * A token bucket refilled lazily from the time it is given: `perSecond` tokens a second, at most
 * `burst`. No timers, no clock of its own; two numbers of state, so one per connection per kind is cheap.
 */
export class Bucket {
  private tokens: number;
  private last: number;

  constructor(
    private readonly rate: Rate,
    now: number,
  ) {
    this.tokens = rate.burst;
    this.last = now;
  }

  private refill(now: number): void {
    if (now > this.last) {
      this.tokens = Math.min(this.rate.burst, this.tokens + ((now - this.last) / 1000) * this.rate.perSecond);
      this.last = now;
    }
  }

  /** Takes a token if there is one. */
  take(now: number): boolean {
    this.refill(now);
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return true;
    }
    return false;
  }

  /** Milliseconds until a token is due (0 when one is there now). */
  waitMs(now: number): number {
    this.refill(now);
    return this.tokens >= 1 ? 0 : Math.ceil(((1 - this.tokens) / this.rate.perSecond) * 1000);
  }

  /** True when the bucket is full again, i.e. it remembers nothing a fresh one would not. */
  full(now: number): boolean {
    this.refill(now);
    return this.tokens >= this.rate.burst;
  }
}

export type MessageVerdict = 'ok' | 'drop' | 'abuse';

/**
 * One connection's message rates: a bucket per kind, created when the kind is first seen. A message
 * over its kind's rate is dropped; every drop takes a token from the `abuse` bucket, and a connection
 * that empties that one is abusing the server (the caller closes it with 1008).
 */
export class MessageLimiter {
  /** Made at the first message: most listeners never send one, and an empty Map is ~180 bytes per connection. */
  private buckets: Map<MessageRateKind, Bucket> | null = null;
  /** Messages dropped on this connection so far. */
  dropped = 0;

  constructor(private readonly rates: Readonly<Record<MessageRateKind, Rate>>) {}

  check(kind: Exclude<MessageRateKind, 'abuse'>, now: number): MessageVerdict {
    if (this.bucket(kind, now).take(now)) return 'ok';
    this.dropped++;
    return this.bucket('abuse', now).take(now) ? 'drop' : 'abuse';
  }

  private bucket(kind: MessageRateKind, now: number): Bucket {
    this.buckets ??= new Map();
    let b = this.buckets.get(kind);
    if (!b) {
      b = new Bucket(this.rates[kind], now);
      this.buckets.set(kind, b);
    }
    return b;
  }
}

/**
 * Token buckets per key (a client address), bounded in memory: when `maxKeys` are held, buckets that
 * have refilled completely are forgotten (they hold no state a new one would not), and if every one
 * is still draining the oldest is dropped.
 */
export class KeyedBuckets {
  private readonly buckets = new Map<string, Bucket>();

  constructor(
    private readonly rate: Rate,
    private readonly maxKeys = 100_000,
  ) {}

  /** Takes a token for `key`, or says how long until one is due. */
  take(key: string, now: number): { ok: true } | { ok: false; retryAfterMs: number } {
    let b = this.buckets.get(key);
    if (!b) {
      if (this.buckets.size >= this.maxKeys) this.prune(now);
      b = new Bucket(this.rate, now);
      this.buckets.set(key, b);
    }
    return b.take(now) ? { ok: true } : { ok: false, retryAfterMs: b.waitMs(now) };
  }

  get size(): number {
    return this.buckets.size;
  }

  private prune(now: number): void {
    for (const [k, b] of this.buckets) if (b.full(now)) this.buckets.delete(k);
    if (this.buckets.size >= this.maxKeys) this.buckets.delete(this.buckets.keys().next().value!);
  }
}
