/**
 * Load thresholds, k6-style: `[kind.]metric op value`, e.g. `p95<200`, `p(99.9)<=1000`,
 * `join.availability>0.99`, `error_rate<0.01`, `rps>=100`. Latencies are in milliseconds.
 * A threshold with nothing to judge fails ("no data"): a gate that passes on silence gates nothing.
 */

export const THRESHOLD_HELP = 'expected [kind.]metric op value, e.g. "p95<200", "p(99.9)<1000", "join.availability>0.99", "error_rate<0.01", "rps>=100"';

/** What a threshold can look at, per request kind. */
export type ThresholdMetric =
  | { name: 'percentile'; p: number }
  | { name: 'max' | 'min' | 'avg' | 'availability' | 'error_rate' | 'refused_rate' | 'errors' | 'requests' | 'rps' };

export type ThresholdOp = '<' | '<=' | '>' | '>=' | '==';

export interface Threshold {
  text: string;
  /** The request kind it is about (join, details, ws_connect, audio, …), or null for every kind measured. */
  kind: string | null;
  metric: ThresholdMetric;
  op: ThresholdOp;
  value: number;
  /** Stop the whole run as soon as this threshold fails (k6's abortOnFail). */
  abortOnFail: boolean;
  /** With abortOnFail: judge it only after this many seconds of the run. */
  delayAbortEvalS: number;
}

export class ThresholdError extends Error {
  readonly code = 'THRESHOLD_INVALID';
  constructor(readonly text: string) {
    super(`bad threshold '${text}': ${THRESHOLD_HELP}`);
    this.name = 'ThresholdError';
  }
}

const SIMPLE = ['max', 'min', 'avg', 'med', 'availability', 'error_rate', 'refused_rate', 'errors', 'requests', 'rps'] as const;
const RE = /^(?:([a-z_]+)\.)?(p\(\s*[0-9]+(?:\.[0-9]+)?\s*\)|p[0-9]+(?:\.[0-9]+)?|[a-z_]+)\s*(<=|>=|==|<|>)\s*(-?[0-9]+(?:\.[0-9]+)?)$/;

/** `p95` → 95, `p999` → 99.9 (digits past the second are decimals, as in p999/p9999), `p(99.9)` → 99.9. */
function percentileOf(token: string): number | null {
  const paren = /^p\(\s*([0-9.]+)\s*\)$/.exec(token);
  let p: number;
  if (paren) p = Number(paren[1]);
  else {
    const digits = token.slice(1);
    p = digits.includes('.') || digits.length <= 2 ? Number(digits) : Number(`${digits.slice(0, 2)}.${digits.slice(2)}`);
  }
  return Number.isFinite(p) && p > 0 && p <= 100 ? p : null;
}

export interface ThresholdSpec {
  threshold: string;
  abortOnFail?: boolean;
  delayAbortEval?: number;
}

export function parseThreshold(spec: string | ThresholdSpec): Threshold {
  const text = typeof spec === 'string' ? spec : spec.threshold;
  const m = RE.exec(text.trim());
  if (!m) throw new ThresholdError(text);
  const token = m[2]!;
  let metric: ThresholdMetric;
  if (token.startsWith('p') && /^p[(0-9]/.test(token)) {
    const p = percentileOf(token);
    if (p === null) throw new ThresholdError(text);
    metric = { name: 'percentile', p };
  } else if (token === 'med') metric = { name: 'percentile', p: 50 };
  else if ((SIMPLE as readonly string[]).includes(token)) metric = { name: token as Exclude<(typeof SIMPLE)[number], 'med'> };
  else throw new ThresholdError(text);
  return {
    text,
    kind: m[1] ?? null,
    metric,
    op: m[3] as ThresholdOp,
    value: Number(m[4]),
    abortOnFail: typeof spec === 'string' ? false : (spec.abortOnFail ?? false),
    delayAbortEvalS: typeof spec === 'string' ? 0 : (spec.delayAbortEval ?? 0),
  };
}

/** What one request kind measured, as thresholds read it. */
export interface Measured {
  kind: string;
  requests: number;
  ok: number;
  refused: number;
  errors: number;
  seconds: number;
  /** Latency in ms at percentile p (0–100], null without samples; never above the max. */
  percentile(p: number): number | null;
  max(): number | null;
  min(): number | null;
  mean(): number | null;
}

function value(m: Measured, metric: ThresholdMetric): number | null {
  switch (metric.name) {
    case 'percentile':
      return m.percentile(metric.p);
    case 'max':
      return m.max();
    case 'min':
      return m.min();
    case 'avg':
      return m.mean();
    case 'availability':
      return m.requests > 0 ? m.ok / m.requests : null;
    case 'error_rate':
      return m.requests > 0 ? m.errors / m.requests : null;
    case 'refused_rate':
      return m.requests > 0 ? m.refused / m.requests : null;
    case 'errors':
      return m.requests > 0 ? m.errors : null;
    case 'requests':
      return m.requests;
    case 'rps':
      return m.seconds > 0 ? m.requests / m.seconds : null;
  }
}

export interface ThresholdResult {
  threshold: string;
  /** The worst value among the kinds it covers, or null when there was nothing to judge. */
  actual: number | null;
  pass: boolean;
  abortOnFail?: true;
}

/** Latency-like metrics apply to audio (capture → receipt delays); counts and rates do not (audio has no requests). */
const LATENCY = new Set(['percentile', 'max', 'min', 'avg']);

/**
 * Judges one threshold against the kinds it names, or every kind measured when unqualified; the worst
 * value decides (the highest for "<" bounds, the lowest for ">" bounds). No samples: fails, actual null.
 */
export function judge(t: Threshold, measured: readonly Measured[]): ThresholdResult {
  const targets = measured.filter((k) => (t.kind ? k.kind === t.kind : k.kind !== 'audio' || LATENCY.has(t.metric.name)));
  const values = targets.map((k) => value(k, t.metric)).filter((v): v is number => v !== null);
  const extra = t.abortOnFail ? { abortOnFail: true as const } : {};
  if (values.length === 0) return { threshold: t.text, actual: null, pass: false, ...extra };
  const actual = t.op.startsWith('<') ? Math.max(...values) : Math.min(...values);
  const pass = t.op === '<' ? actual < t.value : t.op === '<=' ? actual <= t.value : t.op === '>' ? actual > t.value : t.op === '>=' ? actual >= t.value : actual === t.value;
  return { threshold: t.text, actual, pass, ...extra };
}

/** An actual value the way a person reads it: shares as percentages, latencies in ms, counts whole. */
export function formatActual(t: Threshold, actual: number | null): string {
  if (actual === null) return 'no data';
  switch (t.metric.name) {
    case 'availability':
    case 'error_rate':
    case 'refused_rate':
      return `${(actual * 100).toFixed(actual === 0 || actual === 1 ? 0 : 2)}% (${round(actual, 4)})`;
    case 'errors':
    case 'requests':
      return String(Math.round(actual));
    case 'rps':
      return `${round(actual, 1)}/s`;
    default:
      return `${round(actual, 2)} ms`;
  }
}

function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}
