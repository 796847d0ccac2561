import hdr from 'hdr-histogram-js';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';

/** Request kinds the load generator reports on (a closed set: they become metric labels). */
export const CLIENT_KINDS = ['join', 'details', 'playlist', 'chunk', 'junk', 'metrics', 'ws_connect', 'audio'] as const;
export type ClientKind = (typeof CLIENT_KINDS)[number];
export const CLIENT_OUTCOMES = ['ok', 'refused', 'error', 'timeout'] as const;
export type ClientOutcome = (typeof CLIENT_OUTCOMES)[number];

/**
 * The load generator's own view, exported to Prometheus so Grafana can show the client side next to
 * the server's. One registry per run, created by the caller.
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
    requests: new Counter({ name: 'stampede_client_requests_total', help: 'Requests the load generator made, by kind and outcome', labelNames: ['kind', 'outcome'], registers: r }),
    duration: new Histogram({ name: 'stampede_client_request_duration_seconds', help: 'Request latency seen by the load generator (from the intended send time)', labelNames: ['kind'], buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10], registers: r }),
    audioDelay: new Histogram({ name: 'stampede_client_audio_delay_seconds', help: 'Audio delay from capture to receipt at the load generator', buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5], registers: r }),
    wsOpen: new Gauge({ name: 'stampede_client_ws_open', help: 'WebSocket listeners the load generator holds open', registers: r }),
  };
  for (const kind of CLIENT_KINDS) if (kind !== 'audio') for (const outcome of CLIENT_OUTCOMES) m.requests.inc({ kind, outcome }, 0);
  return m;
}

/** Per-kind tallies with an HDR histogram of latencies in microseconds. */
export class KindStats {
  readonly latency = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 120_000_000, numberOfSignificantValueDigits: 3 });
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
    if (expectedIntervalMs && expectedIntervalMs > 0) this.latency.recordValueWithExpectedInterval(us, Math.max(1, Math.round(expectedIntervalMs * 1000)));
    else this.latency.recordValue(us);
    if (outcome === 'ok') this.ok++;
    else if (outcome === 'timeout') this.timeouts++;
    else {
      const bag = outcome === 'refused' ? this.refused : this.errors;
      const k = code ?? outcome;
      bag[k] = (bag[k] ?? 0) + 1;
    }
  }
}

export interface KindSummary {
  kind: ClientKind;
  requests: number;
  ok: number;
  refused: Record<string, number>;
  errors: Record<string, number>;
  timeouts: number;
  availability: number;
  rps: number;
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
}

const sum = (o: Record<string, number>): number => Object.values(o).reduce((a, b) => a + b, 0);

export function summarize(s: KindStats, seconds: number): KindSummary {
  const refused = sum(s.refused);
  const errors = sum(s.errors);
  const requests = s.ok + refused + errors + s.timeouts;
  const ms = (p: number): number => Math.round(s.latency.getValueAtPercentile(p) / 10) / 100;
  return {
    kind: s.kind,
    requests,
    ok: s.ok,
    refused: s.refused,
    errors: s.errors,
    timeouts: s.timeouts,
    availability: requests > 0 ? s.ok / requests : 1,
    rps: seconds > 0 ? Math.round((requests / seconds) * 10) / 10 : 0,
    p50: ms(50),
    p90: ms(90),
    p99: ms(99),
    p999: ms(99.9),
    max: Math.round(s.latency.maxValue / 10) / 100,
  };
}

export interface Threshold {
  text: string;
  kind: string | null;
  metric: 'p50' | 'p90' | 'p99' | 'p999' | 'max' | 'availability' | 'errors' | 'rps';
  op: '<' | '<=' | '>' | '>=';
  value: number;
}

export function parseThreshold(text: string): Threshold {
  const m = /^(?:([a-z_]+)\.)?(p50|p90|p99|p999|max|availability|errors|rps)\s*(<=|>=|<|>)\s*([0-9]+(?:\.[0-9]+)?)$/.exec(text.trim());
  if (!m) throw new Error(`bad threshold '${text}': expected e.g. "p99<200", "availability>0.99" or "join.p99<500"`);
  return { text, kind: m[1] ?? null, metric: m[2] as Threshold['metric'], op: m[3] as Threshold['op'], value: Number(m[4]) };
}

export interface ThresholdResult {
  threshold: string;
  actual: number | null;
  pass: boolean;
}

/** Checks thresholds against the kinds they name, or against every kind measured when unqualified. */
export function evaluateThresholds(kinds: KindSummary[], thresholds: readonly string[]): ThresholdResult[] {
  return thresholds.map((text) => {
    const t = parseThreshold(text);
    const targets = kinds.filter((k) => (t.kind ? k.kind === t.kind : k.kind !== 'audio' || t.metric.startsWith('p') || t.metric === 'max'));
    if (targets.length === 0) return { threshold: text, actual: null, pass: false };
    const values = targets.map((k) => (t.metric === 'errors' ? sum(k.errors) + k.timeouts : k[t.metric]));
    // the worst value decides: the highest for "<" bounds, the lowest for ">" bounds
    const actual = t.op.startsWith('<') ? Math.max(...values) : Math.min(...values);
    const pass = t.op === '<' ? actual < t.value : t.op === '<=' ? actual <= t.value : t.op === '>' ? actual > t.value : actual >= t.value;
    return { threshold: text, actual, pass };
  });
}
