/**
 * Why one file (~360 lines): `runLoad` and what it owns — resolving the target space, running each
 * scenario of the plan side by side, the abort thresholds judged while it runs, and the summary printed at
 * the end. The parts that stand alone are beside it: the HTTP and WebSocket clients (`http.ts`,
 * `swarm.ts`), the profile grammar (`profile.ts`), the figures (`results.ts`) and the threshold grammar
 * (`thresholds.ts`).
 */
import { nextSlot, type Clock } from '../clock.js';
import { assertLoopback, profileSeconds, truncatePhases, type LoadPlan, type LoadProfile, type ThresholdEntry } from './profile.js';
import { createClientMetrics, KindStats, summarize, type ClientKind, type ClientMetrics, type KindSummary, type WindowSummary } from './results.js';
import { runScenario, ScenarioRun, type WsSummary } from './scenario.js';
import { formatActual, judge, parseThreshold, type Threshold, type ThresholdResult } from './thresholds.js';
import { runInWorkers, type WorkersOptions } from './workers.js';

export type { WsSummary } from './scenario.js';

export interface LoadOptions {
  /** What to run: several named scenarios (a plan), or one profile. */
  plan?: LoadPlan;
  profile?: LoadProfile;
  /** Base URL of the server under test (loopback only). */
  target: string;
  /** The space to load; default: the first live space the server lists. */
  spaceId?: string;
  /** The target's operator token: with it, a target that has no live or scheduled space gets one (with a synthetic host). */
  token?: string;
  /** Cut the whole run to at most this many seconds. */
  durationS?: number;
  /** More thresholds over all scenarios together (the CLI's --threshold). */
  thresholds?: readonly ThresholdEntry[];
  clock: Clock;
  random: () => number;
  metrics?: ClientMetrics;
  onProgress?: (p: LoadProgress) => void;
  /** Called once a second with what each scenario measured in that second, per request kind. */
  onInterval?: (lines: IntervalLine[]) => void;
  signal?: AbortSignal;
  /** Run the scenarios in this many worker threads (each a share of the load), results merged exactly. */
  workers?: WorkersOptions;
}

export interface LoadProgress {
  elapsedS: number;
  totalS: number;
  requests: number;
  ok: number;
  connected?: number;
}

/** One line of the per-interval stream: one scenario, one request kind, one interval. */
export interface IntervalLine extends WindowSummary {
  type: 'interval';
  /** End of the interval (ISO time) and seconds since the run started. */
  t: string;
  elapsedS: number;
  scenario: string;
  tags: Record<string, string>;
}

export interface ScenarioResult {
  name: string;
  kind: LoadProfile['kind'];
  executor: LoadProfile['executor'];
  startTime: number;
  tags: Record<string, string>;
  seconds: number;
  kinds: KindSummary[];
  /** WebSocket scenarios: close codes seen, audio chunks received and missed. */
  ws?: WsSummary;
  thresholds: ThresholdResult[];
  pass: boolean;
}

export interface LoadResult {
  /** The plan's (or single profile's) name. */
  profile: string;
  target: string;
  spaceId: string;
  seconds: number;
  /** Load workers (threads) the run was spread over; 1 = this process alone. */
  workers: number;
  scenarios: ScenarioResult[];
  /** Every scenario's requests together, per kind (HDR histograms merged exactly). */
  kinds: KindSummary[];
  /** The plan's own thresholds and --threshold ones, judged on everything together. */
  thresholds: ThresholdResult[];
  /** Set when a threshold with abortOnFail stopped the run. */
  aborted: { threshold: string; scenario: string | null; atS: number } | null;
  /** Every threshold, per scenario and overall, held (and nothing aborted the run). */
  pass: boolean;
}

export class LoadError extends Error {
  constructor(
    readonly code: 'TARGET_UNREACHABLE' | 'TARGET_NOT_STAMPEDE' | 'NO_SPACE',
    message: string,
  ) {
    super(message);
    this.name = 'LoadError';
  }
}

/** The cause of a failed fetch, as a person can act on it: "connect ECONNREFUSED 127.0.0.1:9". */
function causeOf(err: unknown): string {
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  return cause?.message ?? cause?.code ?? (err as Error).message;
}

/** Finds the space to load: the given id, or the first live (then scheduled) space the server lists; with the operator token, a new one when there is none. */
export async function resolveSpace(base: URL, spaceId?: string, signal?: AbortSignal, token?: string): Promise<string> {
  if (spaceId) return spaceId;
  const url = new URL('/api/v1/spaces', base).href;
  const timeout = (): AbortSignal => (signal ? AbortSignal.any([signal, AbortSignal.timeout(10_000)]) : AbortSignal.timeout(10_000));
  let res: Response;
  try {
    res = await fetch(url, { signal: timeout() });
  } catch (err) {
    throw new LoadError('TARGET_UNREACHABLE', `cannot reach ${url}: ${causeOf(err)}`);
  }
  if (!res.ok) throw new LoadError('TARGET_NOT_STAMPEDE', `${url} answered ${res.status}; is it a Stampede server?`);
  const { spaces } = (await res.json().catch(() => ({ spaces: [] }))) as { spaces: { id: string; state: string }[] };
  const s = spaces.find((x) => x.state === 'live') ?? spaces.find((x) => x.state === 'scheduled');
  if (s) return s.id;
  if (!token) throw new LoadError('NO_SPACE', `no live or scheduled space on ${base.origin}; pass --space, or --token <operator token> to create one`);
  return createLiveSpace(base, token, timeout);
}

/** Creates a space with the operator token and starts it with a synthetic host. */
async function createLiveSpace(base: URL, token: string, timeout: () => AbortSignal): Promise<string> {
  const post = async (path: string, body: unknown): Promise<Response> =>
    fetch(new URL(path, base), { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(body), signal: timeout() });
  const created = await post('/api/v1/spaces', { title: 'stampede load', scheduledStart: new Date().toISOString() });
  if (created.status !== 201) throw new LoadError('NO_SPACE', `creating a space on ${base.origin} answered ${created.status}: ${(await created.text()).slice(0, 300)}`);
  const { space } = (await created.json()) as { space: { id: string } };
  const started = await post(`/api/v1/spaces/${space.id}/start`, { syntheticHost: true });
  if (started.status !== 200) throw new LoadError('NO_SPACE', `starting space ${space.id} answered ${started.status}: ${(await started.text()).slice(0, 300)}`);
  return space.id;
}

/** The plan a caller asked for, cut to `durationS` of the whole run (a scenario starting later is cut to nothing). */
function effectivePlan(o: LoadOptions): LoadPlan {
  const plan = o.plan ?? (o.profile ? { name: o.profile.name, description: o.profile.description, thresholds: [], scenarios: [o.profile] } : null);
  if (!plan) throw new Error('runLoad needs a plan or a profile');
  if (!o.durationS) return plan;
  const cap = o.durationS;
  const scenarios = plan.scenarios.map((s) => {
    const left = Math.max(0, cap - s.startTime);
    return left > 0 ? { ...s, phases: truncatePhases(s.phases, left) } : { ...s, phases: [] };
  });
  return { ...plan, scenarios };
}

/**
 * Runs every scenario of a plan at once against one server (each from its start time, with its own
 * executor), judges each scenario's thresholds on its own requests and the plan's on all of them
 * together, and stops everything early when a threshold marked abortOnFail fails.
 */
export async function runLoad(o: LoadOptions): Promise<LoadResult> {
  const base = assertLoopback(o.target);
  const plan = effectivePlan(o);
  const spaceId = await resolveSpace(base, o.spaceId, o.signal, o.token);
  const metrics = o.metrics ?? createClientMetrics();
  const { clock } = o;
  const inPlan = plan.scenarios.map((s) => new ScenarioRun(s));
  const runs = inPlan.filter((r) => r.profile.phases.length > 0);
  const skipped = inPlan.filter((r) => r.profile.phases.length === 0);
  const overallThresholds = [...plan.thresholds, ...(o.thresholds ?? [])].map(parseThreshold);
  const totalS = Math.max(0, ...runs.map((r) => r.profile.startTime + profileSeconds(r.profile)));
  const abort = new AbortController();
  const onAbort = (): void => abort.abort();
  o.signal?.addEventListener('abort', onAbort, { once: true });
  let aborted: LoadResult['aborted'] = null;
  let settled = false;
  let t0 = clock.now();
  let all: Promise<unknown>;
  if (o.workers) {
    // t0 is when every worker is ready and told to go
    let started!: () => void;
    const go = new Promise<void>((r) => (started = r));
    all = runInWorkers(inPlan, plan, { ...o.workers, target: base.href, spaceId, clock, signal: abort.signal, onStart: (t) => ((t0 = t), started()) }).finally(() => (settled = true));
    await Promise.race([go, all]);
  } else {
    const ctx = { base, spaceId, clock, random: o.random, metrics, signal: abort.signal, t0 };
    all = Promise.all(runs.map((r) => runScenario(r, ctx))).finally(() => (settled = true));
  }
  const overall = (seconds: number): ReturnType<KindStats['measured']>[] => mergeKinds(runs).map((s) => s.measured(seconds));

  const emitInterval = (elapsedS: number): void => {
    if (!o.onInterval) return;
    const t = new Date(clock.now()).toISOString();
    const lines: IntervalLine[] = [];
    for (const r of runs) for (const s of r.stats) lines.push({ type: 'interval', t, elapsedS: Math.round(elapsedS * 1000) / 1000, scenario: r.profile.name, tags: r.profile.tags, ...s.takeWindow() });
    o.onInterval(lines.filter((l) => l.requests > 0 || l.p50 !== null));
  };
  // once a second: the per-interval stream, abortOnFail, the progress line
  const tick = new AbortController();
  void all.finally(() => tick.abort()).catch(() => undefined); // a failure is thrown by `await all` below
  // an interval line covers everything since the last one: the seconds a stall made it miss are skipped, not
  // run back to back (the line's elapsedS says when it was taken)
  for (let n = 1; !settled; n = nextSlot(t0, 1000, n, clock.now())) {
    await clock.sleep(t0 + n * 1000 - clock.now(), tick.signal);
    if (settled) break;
    const elapsedS = (clock.now() - t0) / 1000;
    emitInterval(elapsedS);
    if (!aborted) aborted = checkAbort(runs, overallThresholds, overall, elapsedS);
    if (aborted) abort.abort();
    const c = runs.map((r) => r.counts());
    const connected = runs.some((r) => r.profile.kind === 'ws') ? c.reduce((a, x) => a + x.connected, 0) : undefined;
    o.onProgress?.({ elapsedS, totalS, requests: c.reduce((a, x) => a + x.requests, 0), ok: c.reduce((a, x) => a + x.ok, 0), ...(connected !== undefined ? { connected } : {}) });
  }
  await all;
  o.signal?.removeEventListener('abort', onAbort);
  const seconds = (clock.now() - t0) / 1000;
  emitInterval(seconds); // the last, partial interval

  const scenarios: ScenarioResult[] = [...runs, ...skipped].map((r) => {
    const thresholds = r.judge(seconds);
    return {
      name: r.profile.name,
      kind: r.profile.kind,
      executor: r.profile.executor,
      startTime: r.profile.startTime,
      tags: r.profile.tags,
      seconds: Math.round(r.seconds * 10) / 10,
      kinds: r.stats.map((s) => summarize(s, r.seconds)),
      ...(r.ws() ? { ws: r.ws() } : {}),
      thresholds,
      pass: thresholds.every((t) => t.pass),
    };
  });
  const measured = overall(seconds);
  const thresholds = overallThresholds.map((t) => judge(t, measured));
  return {
    profile: plan.name,
    target: base.origin,
    spaceId,
    seconds: Math.round(seconds * 10) / 10,
    workers: o.workers?.count ?? 1,
    scenarios,
    kinds: mergeKinds(runs).map((s) => summarize(s, seconds)),
    thresholds,
    aborted,
    pass: aborted === null && thresholds.every((t) => t.pass) && scenarios.every((s) => s.pass),
  };
}

/** Every scenario's tallies of one kind, merged, in the order kinds first appear. */
function mergeKinds(runs: readonly ScenarioRun[]): KindStats[] {
  const byKind = new Map<ClientKind, KindStats[]>();
  for (const r of runs) for (const s of r.stats) byKind.set(s.kind, [...(byKind.get(s.kind) ?? []), s]);
  return [...byKind].map(([kind, parts]) => (parts.length === 1 ? parts[0]! : KindStats.merge(kind, parts)));
}

function checkAbort(runs: readonly ScenarioRun[], overall: readonly Threshold[], measure: (s: number) => ReturnType<KindStats['measured']>[], elapsedS: number): LoadResult['aborted'] {
  const due = (t: Threshold): boolean => t.abortOnFail && elapsedS >= t.delayAbortEvalS;
  for (const r of runs)
    for (const res of r.judge(elapsedS, due))
      // "no data" yet is not a reason to abort while the run is still going
      if (!res.pass && res.actual !== null) return { threshold: res.threshold, scenario: r.profile.name, atS: Math.round(elapsedS * 10) / 10 };
  const live = overall.filter(due);
  if (live.length) {
    const m = measure(elapsedS);
    for (const t of live) {
      const res = judge(t, m);
      if (!res.pass && res.actual !== null) return { threshold: t.text, scenario: null, atS: Math.round(elapsedS * 10) / 10 };
    }
  }
  return null;
}

const cell = (v: number | null, width: number): string => (v === null ? '-' : String(v)).padEnd(width);

function kindLines(kinds: readonly KindSummary[]): string[] {
  const lines = ['    kind        requests   ok       avail    rps      p50 ms   p90 ms   p95 ms   p99 ms   p99.9 ms  max ms   refused / errors'];
  for (const k of kinds) {
    if (k.requests === 0 && k.max === null) continue;
    const bad = [...Object.entries(k.refused).map(([c, n]) => `${c}×${n}`), ...Object.entries(k.errors).map(([c, n]) => `${c}×${n}`), ...(k.timeouts ? [`timeout×${k.timeouts}`] : [])].join(' ');
    const avail = k.availability === null ? '    -' : `${(k.availability * 100).toFixed(1).padStart(5)}%`;
    lines.push(`    ${k.kind.padEnd(11)} ${String(k.requests).padEnd(10)} ${String(k.ok).padEnd(8)} ${avail.padEnd(8)} ${String(k.rps).padEnd(8)} ${cell(k.p50, 8)} ${cell(k.p90, 8)} ${cell(k.p95, 8)} ${cell(k.p99, 8)} ${cell(k.p999, 9)} ${cell(k.max, 8)} ${bad}`);
  }
  return lines;
}

function thresholdLines(results: readonly ThresholdResult[]): string[] {
  return results.map((t) => `    ${t.pass ? 'PASS' : 'FAIL'}  ${t.threshold}  (actual ${formatActual(parseThreshold(t.threshold), t.actual)})`);
}

/** The human summary: per scenario, then overall, then the verdict. */
export function formatSummary(r: LoadResult): string {
  const lines = [`${r.profile} against ${r.target} for ${r.seconds} s (${r.scenarios.length} scenario${r.scenarios.length === 1 ? '' : 's'}${r.workers > 1 ? `, ${r.workers} load workers, histograms merged` : ''})`];
  for (const s of r.scenarios) {
    const tags = Object.entries(s.tags).map(([k, v]) => `${k}=${v}`).join(',');
    lines.push('', `  scenario ${s.name}: ${s.kind}, ${s.executor}, from ${s.startTime} s${tags ? `, tags ${tags}` : ''}`);
    lines.push(...kindLines(s.kinds));
    if (s.ws) lines.push(`    listeners: peak ${s.ws.peakConnected} connected, ${s.ws.chunks} audio chunks, ${s.ws.gaps} missed; ${s.ws.cutShort} sockets and ${s.ws.joinsAbandoned} joins still open at the end; closes ${JSON.stringify(s.ws.closes)}`);
    lines.push(...thresholdLines(s.thresholds));
  }
  if (r.scenarios.length > 1 || r.thresholds.length > 0) {
    lines.push('', '  overall (every scenario together)');
    if (r.scenarios.length > 1) lines.push(...kindLines(r.kinds));
    lines.push(...thresholdLines(r.thresholds));
  }
  const all = [...r.scenarios.flatMap((s) => s.thresholds), ...r.thresholds];
  const failed = all.filter((t) => !t.pass).length;
  lines.push('');
  if (r.aborted) lines.push(`  ABORTED at ${r.aborted.atS} s: ${r.aborted.threshold}${r.aborted.scenario ? ` (scenario ${r.aborted.scenario})` : ''} failed and has abortOnFail`);
  lines.push(`  thresholds: ${all.length - failed} passed, ${failed} failed${all.length === 0 ? ' (none set)' : ''} — ${r.pass ? 'PASS' : 'FAIL'}`);
  return lines.join('\n');
}
