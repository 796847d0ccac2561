import hdr from 'hdr-histogram-js';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Measured } from './thresholds.js';

/** Request kinds the load generator reports on (a closed set: they become metric labels). */
export const CLIENT_KINDS = ['join', 'details', 'playlist', 'chunk', 'junk', 'metrics', 'ws_connect', 'audio'] as const;
export type ClientKind = (typeof CLIENT_KINDS)[number];
export const CLIENT_OUTCOMES = ['ok', 'refused', 'error', 'timeout'] as const;
export type ClientOutcome = (typeof CLIENT_OUTCOMES)[number];

/**
 * The clients' own view, exported to Prometheus so Grafana can show the client side next to the
 * server's: a load generator's (on its own registry and port), or a replay's real listeners (on the
 * replay server's registry, same names and labels). One registry per run, created by the caller.
 */
export interface ClientMetrics {
  registry: Registry;
  requests: Counter<'kind' | 'outcome'>;
  duration: Histogram<'kind'>;
  audioDelay: Histogram;
  wsOpen: Gauge;
}

export function createClientMetrics(registry = new Registry()): ClientMetrics {
  const r = [registry];
  const m: ClientMetrics = {
    registry,
    requests: new Counter({ name: 'stampede_client_requests_total', help: 'Requests clients made (a load generator, or a replay\'s real listeners), by kind and outcome', labelNames: ['kind', 'outcome'], registers: r }),
    duration: new Histogram({ name: 'stampede_client_request_duration_seconds', help: 'Request latency seen by clients (from the intended send time)', labelNames: ['kind'], buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10], registers: r }),
    audioDelay: new Histogram({ name: 'stampede_client_audio_delay_seconds', help: 'Audio delay from capture to receipt at clients', buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5], registers: r }),
    wsOpen: new Gauge({ name: 'stampede_client_ws_open', help: 'WebSocket listeners clients hold open', registers: r }),
  };
  for (const kind of CLIENT_KINDS) if (kind !== 'audio') for (const outcome of CLIENT_OUTCOMES) m.requests.inc({ kind, outcome }, 0);
  return m;
}

const histogram = (): hdr.Histogram => hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 120_000_000, numberOfSignificantValueDigits: 3 });
const sum = (o: Record<string, number>): number => Object.values(o).reduce((a, b) => a + b, 0);

/**
 * Latency at a percentile in ms from a µs histogram, kept inside the exact [lo, hi] recorded (HDR
 * reports a bucket's upper edge, and a histogram added from another keeps only bucket-precise extremes).
 */
function percentileMs(h: hdr.Histogram, p: number, lo: number, hi: number): number | null {
  if (h.totalCount === 0) return null;
  const us = Math.min(Math.max(h.getValueAtPercentile(p), lo), hi);
  return us / 1000;
}

/** What one interval measured (for the per-interval stream). */
export interface WindowSummary {
  kind: ClientKind;
  requests: number;
  ok: number;
  refused: number;
  errors: number;
  timeouts: number;
  p50: number | null;
  p95: number | null;
  p99: number | null;
  max: number | null;
}

/**
 * What one load worker measured of one kind since its last report: counts and the HDR histogram of
 * latencies (µs, compressed base64: HdrHistogram's own interchange format), so that the parent adds
 * histograms, never percentiles.
 */
export interface KindDelta {
  kind: ClientKind;
  histogram: string | null;
  /** The exact smallest and largest latency (µs) in the histogram (its encoding keeps them only to a bucket). */
  minUs: number;
  maxUs: number;
  ok: number;
  timeouts: number;
  refused: Record<string, number>;
  errors: Record<string, number>;
}

const minus = (now: Record<string, number>, before: Record<string, number>): Record<string, number> =>
  Object.fromEntries(Object.entries(now).flatMap(([k, n]) => (n - (before[k] ?? 0) > 0 ? [[k, n - (before[k] ?? 0)]] : [])));

/** Per-kind tallies with an HDR histogram of latencies in microseconds (and one for the current interval). */
export class KindStats {
  readonly latency = histogram();
  private window = histogram();
  private taken = { ok: 0, refused: 0, errors: 0, timeouts: 0 };
  private sent = { ok: 0, timeouts: 0, refused: {} as Record<string, number>, errors: {} as Record<string, number> };
  /** Exact extremes (µs) of the run and of the current interval. */
  private lo = Infinity;
  private hi = 0;
  private wlo = Infinity;
  private whi = 0;
  ok = 0;
  refused: Record<string, number> = {};
  errors: Record<string, number> = {};
  timeouts = 0;

  constructor(readonly kind: ClientKind) {}

  /**
   * Records one request. With `expectedIntervalMs` (the time a connection should take per request at
   * the intended rate) a response slower than that also records the requests that should have been
   * sent meanwhile (HdrHistogram's correction for coordinated omission).
   */
  record(outcome: ClientOutcome, ms: number, code?: string, expectedIntervalMs?: number): void {
    const us = Math.max(1, Math.round(ms * 1000));
    for (const h of [this.latency, this.window]) {
      if (expectedIntervalMs && expectedIntervalMs > 0) h.recordValueWithExpectedInterval(us, Math.max(1, Math.round(expectedIntervalMs * 1000)));
      else h.recordValue(us);
    }
    this.hi = Math.max(this.hi, us);
    this.whi = Math.max(this.whi, us);
    this.lo = Math.min(this.lo, this.latency.minNonZeroValue);
    this.wlo = Math.min(this.wlo, this.window.minNonZeroValue);
    if (outcome === 'ok') this.ok++;
    else if (outcome === 'timeout') this.timeouts++;
    else {
      const bag = outcome === 'refused' ? this.refused : this.errors;
      const k = code ?? outcome;
      bag[k] = (bag[k] ?? 0) + 1;
    }
  }

  get requests(): number {
    return this.ok + sum(this.refused) + sum(this.errors) + this.timeouts;
  }

  /** Latency in ms at percentile p, never above the largest value recorded; null without samples. */
  percentile(p: number): number | null {
    return percentileMs(this.latency, p, this.lo, this.hi);
  }

  /** The largest latency recorded, in ms; null without samples. */
  get maxMs(): number | null {
    return this.latency.totalCount > 0 ? this.hi / 1000 : null;
  }

  /** The thresholds' view of these tallies over `seconds` of run time. */
  measured(seconds: number): Measured {
    const h = this.latency;
    const some = h.totalCount > 0;
    return {
      kind: this.kind,
      requests: this.requests,
      ok: this.ok,
      refused: sum(this.refused),
      errors: sum(this.errors) + this.timeouts,
      seconds,
      percentile: (p) => percentileMs(h, p, this.lo, this.hi),
      max: () => (some ? this.hi / 1000 : null),
      min: () => (some ? this.lo / 1000 : null),
      mean: () => (some ? h.mean / 1000 : null),
    };
  }

  /** What was measured since the last call, then starts a new interval. */
  takeWindow(): WindowSummary {
    const now = { ok: this.ok, refused: sum(this.refused), errors: sum(this.errors), timeouts: this.timeouts };
    const d = { ok: now.ok - this.taken.ok, refused: now.refused - this.taken.refused, errors: now.errors - this.taken.errors, timeouts: now.timeouts - this.taken.timeouts };
    this.taken = now;
    const w = this.window;
    const out: WindowSummary = {
      kind: this.kind,
      requests: d.ok + d.refused + d.errors + d.timeouts,
      ...d,
      p50: percentileMs(w, 50, this.wlo, this.whi),
      p95: percentileMs(w, 95, this.wlo, this.whi),
      p99: percentileMs(w, 99, this.wlo, this.whi),
      max: w.totalCount > 0 ? this.whi / 1000 : null,
    };
    this.resetWindow();
    return out;
  }

  /**
   * What was recorded since the last delta (a load worker's report to its parent), then starts a new
   * one. A tally reports either deltas (in a worker) or windows (in the process that streams intervals).
   */
  takeDelta(): KindDelta {
    const w = this.window;
    const d: KindDelta = {
      kind: this.kind,
      histogram: w.totalCount > 0 ? hdr.encodeIntoCompressedBase64(w) : null,
      minUs: this.wlo,
      maxUs: this.whi,
      ok: this.ok - this.sent.ok,
      timeouts: this.timeouts - this.sent.timeouts,
      refused: minus(this.refused, this.sent.refused),
      errors: minus(this.errors, this.sent.errors),
    };
    this.sent = { ok: this.ok, timeouts: this.timeouts, refused: { ...this.refused }, errors: { ...this.errors } };
    this.resetWindow();
    return d;
  }

  private resetWindow(): void {
    this.window.reset();
    this.wlo = Infinity;
    this.whi = 0;
  }

  private widen(lo: number, hi: number): void {
    this.lo = Math.min(this.lo, lo);
    this.hi = Math.max(this.hi, hi);
  }

  /** Adds a worker's delta, exactly: its histogram into the run's and the current interval's, its counts to these. */
  absorb(d: KindDelta): void {
    if (d.histogram !== null) {
      const h = hdr.decodeFromCompressedBase64(d.histogram);
      this.latency.add(h);
      this.window.add(h);
      h.destroy();
      this.widen(d.minUs, d.maxUs);
      this.wlo = Math.min(this.wlo, d.minUs);
      this.whi = Math.max(this.whi, d.maxUs);
    }
    this.ok += d.ok;
    this.timeouts += d.timeouts;
    for (const [k, n] of Object.entries(d.refused)) this.refused[k] = (this.refused[k] ?? 0) + n;
    for (const [k, n] of Object.entries(d.errors)) this.errors[k] = (this.errors[k] ?? 0) + n;
  }

  /** Exact union of several tallies of one kind (HDR histograms add; percentiles are never averaged). */
  static merge(kind: ClientKind, parts: readonly KindStats[]): KindStats {
    const m = new KindStats(kind);
    for (const p of parts) {
      m.latency.add(p.latency);
      if (p.latency.totalCount > 0) m.widen(p.lo, p.hi);
      m.ok += p.ok;
      m.timeouts += p.timeouts;
      for (const [k, n] of Object.entries(p.refused)) m.refused[k] = (m.refused[k] ?? 0) + n;
      for (const [k, n] of Object.entries(p.errors)) m.errors[k] = (m.errors[k] ?? 0) + n;
    }
    return m;
  }
}

export interface KindSummary {
  kind: ClientKind;
  requests: number;
  ok: number;
  refused: Record<string, number>;
  errors: Record<string, number>;
  timeouts: number;
  /** ok / requests; null with no requests. */
  availability: number | null;
  rps: number;
  /** Latencies in ms (HDR, 3 significant digits), each at most `max`; null without samples. */
  p50: number | null;
  p90: number | null;
  p95: number | null;
  p99: number | null;
  p999: number | null;
  max: number | null;
}

const ms2 = (x: number | null): number | null => (x === null ? null : Math.round(x * 100) / 100);

export function summarize(s: KindStats, seconds: number): KindSummary {
  const requests = s.requests;
  return {
    kind: s.kind,
    requests,
    ok: s.ok,
    refused: s.refused,
    errors: s.errors,
    timeouts: s.timeouts,
    availability: requests > 0 ? s.ok / requests : null,
    rps: seconds > 0 ? Math.round((requests / seconds) * 10) / 10 : 0,
    p50: ms2(s.percentile(50)),
    p90: ms2(s.percentile(90)),
    p95: ms2(s.percentile(95)),
    p99: ms2(s.percentile(99)),
    p999: ms2(s.percentile(99.9)),
    max: ms2(s.maxMs),
  };
}
