/**
 * Why one file (~370 lines): the replay report's shape, its scoring against the scenario's sourced
 * facts and its markdown text. They change together: a new kind of fact adds a case to the scenario
 * schema, a case to `scoreExpectations` (one switch over fact kinds, ~110 lines) and its line in the
 * report. Writing files, charts, the HTML page and comparing runs are beside it (`write.ts`,
 * `charts.ts`, `html.ts`, `compare.ts`).
 */
import type { MinuteRow, ReplayResult, ScheduleLag } from '../sim/index.js';

export interface Expectation {
  name: string;
  expected: string;
  actual: string;
  pass: boolean;
  /** How far the replay is from the fact: 0 on target, 1 at the edge of the accepted range, more outside. */
  error: number;
  source: string;
  /** Not used for fitting, only for checking (absent when false). */
  holdOut?: true;
  /** What the fact says in numbers, so charts can draw it as a point or a band (absent for facts with nothing to draw). */
  target?: FactTarget;
}

/** A fact as something to hit on a chart. Times are ISO strings. */
export type FactTarget =
  | { kind: 'liveAt'; from: string; to: string }
  | { kind: 'listenersAt'; at: string; min: number }
  | { kind: 'peakListeners'; min: number; max: number }
  | { kind: 'failureShare'; from: string; to: string; min: number };

/** Where a run came from, so what-ifs can be told apart and repeated. */
export interface RunMeta {
  /** The scenario file as given, and the SHA-256 of its bytes. */
  scenarioFile: string;
  scenarioSha256: string;
  /** The --set overrides, in order. */
  overrides: string[];
  seed: number;
  speed: number | 'max';
  /** The tool and its version, e.g. "stampede 0.1.0". */
  tool: string;
  startedAt: string;
  finishedAt: string;
  /** Present when the night ran on a cluster (`replay --instances N`, N ≥ 2): the instances and each one's share. */
  cluster?: ClusterShare;
  /** Present when real listeners joined: what they measured, over every load worker they ran in. */
  realListeners?: RealListenersShare;
  /** At a numeric speed: how far behind its schedule the replay ran (steps after which the next was already due). */
  schedule?: ScheduleShare;
}

/** How far a paced replay fell behind its schedule (a busy machine), of how many steps; it catches up, yielding to the server between steps. */
export type ScheduleShare = ScheduleLag & { steps: number };

/** A replay this far behind its schedule says so in its summary: a third of a cluster owner's lease (docs/cluster.md). */
const BEHIND_WORTH_SAYING_MS = 1_000;

function scheduleText(x: ScheduleShare): string {
  return x.lateSteps === 0 ? `on schedule (0 of ${x.steps.toLocaleString('en-US')} steps late)` : `${x.lateSteps.toLocaleString('en-US')} of ${x.steps.toLocaleString('en-US')} steps late, at most ${(x.maxBehindMs / 1000).toFixed(1)} s behind (a busy machine; the replay caught up, yielding to the server between steps)`;
}

/**
 * What the replay's real listeners measured at the clients: counts added over the load workers they ran
 * in (`replay --workers N`) and latencies from their HDR histograms merged, never averaged percentiles.
 */
export interface RealListenersShare {
  listeners: number;
  /** Load worker threads they ran in (1: the replay's own process). */
  workers: number;
  peakConnected: number;
  /** Join calls made and admitted; latency from the intended arrival, ms. */
  joins: { attempts: number; admitted: number; p50Ms: number | null; p99Ms: number | null };
  /** Audio chunks heard, sequence numbers missed, capture → receipt delay (ms). */
  audio: { chunks: number; gaps: number; p50Ms: number | null; p99Ms: number | null; maxMs: number | null };
  /** Their sockets' closes by close code. */
  closes: Record<string, number>;
  /** With load workers: each one's share (its listeners' joins admitted and audio chunks heard), in worker order. */
  perWorker?: { joinsAdmitted: number; chunks: number }[];
}

const ms = (x: number | null): string => (x === null ? '—' : `${Math.round(x).toLocaleString('en-US')} ms`);

/** Where the real listeners ran: the replay's process, or N load workers whose results were merged. */
function whereRealListenersRan(x: RealListenersShare): string {
  return x.workers > 1 ? `${x.workers} load worker threads (counts added, HDR histograms merged)` : 'the replay\'s process';
}

/** How a night on a cluster spread over its instances (the figures each instance reported). */
export interface ClusterShare {
  instances: number;
  perInstance: { id: string; peakListeners: number; joinsAdmitted: number; chunksSent: number }[];
}

/** A minute of the replay as written to report.json: the runner's row with an ISO time and no raw counts. */
export type SeriesRow = Omit<MinuteRow, 't' | 'attempts' | 'failures' | 'realAttempts' | 'realAdmitted' | 'maxListeners' | 'liveListenerSeconds' | 'gapListenerSeconds' | 'rooms'> & {
  t: string;
  rooms?: { name: string; phase: MinuteRow['phase']; listeners: number; audioGapShare: number }[];
};

/** A room of the timeline as written to report.json (only for scenarios with rooms, crashes, room load or audio faults). */
export interface RoomReport {
  name: string;
  host: string;
  account: string;
  openedAt: string | null;
  liveAt: string | null;
  endedAt: string | null;
  crashed: boolean;
  peakListeners: number;
  peakAt: string | null;
}

export interface Report {
  /** Present on runs written by the CLI; absent on reports built in code. */
  run?: RunMeta;
  scenario: string;
  file: string;
  /** The overrides the run was made with (absent when none). */
  overrides?: string[];
  account: string;
  seed: number;
  speed: number | 'max';
  withServer: boolean;
  timeZone: string;
  scheduledAt: string;
  liveAt: string | null;
  startDelayMinutes: number | null;
  endedAt: string | null;
  peakListeners: number;
  peakAt: string | null;
  expectations: Expectation[];
  /** Share of expectations met, 0..1. */
  fidelity: number;
  /** Mean distance from the facts (see Expectation.error); breaks ties between accounts. */
  meanError: number;
  events: { t: string; text: string }[];
  series: SeriesRow[];
  /** Every room of the timeline, and the fitted/held-out split (only when the scenario uses them). */
  rooms?: RoomReport[];
  fittedError?: number;
  heldOutError?: number;
  /** A few lines for a terminal. */
  summary: string;
}

const isoOf = (t: number): string => new Date(t).toISOString();
const iso = (t: number | null): string | null => (t === null ? null : isoOf(t));

/**
 * One formatter per time zone, kept (immutable, like charts.ts's): toLocaleTimeString with a time zone builds a
 * new one on every call, ~0.1 ms — an eighth of a replay step at 1200×, where the CLI's progress line calls this.
 */
const CLOCKS = new Map<string, Intl.DateTimeFormat>();

/** HH:MM in the time zone, 00:00–23:59 (`hourCycle: 'h23'`: ICU's `hour12: false` prints half past midnight as 24:30). */
export function localClock(t: number, timeZone: string): string {
  let f = CLOCKS.get(timeZone);
  if (!f) CLOCKS.set(timeZone, (f = new Intl.DateTimeFormat('en-US', { timeZone, hour: '2-digit', minute: '2-digit', hourCycle: 'h23' })));
  return f.format(t);
}

const ZONE_LABELS = new Map<string, { formats: Intl.DateTimeFormat[]; quarter: number; label: string }>();

/**
 * What to write after a clock time in the time zone at `t`: the short generic name where English has one
 * ("ET", "PT"), else the short name ("GMT+1", "UTC") — the event's own zone, never a fixed one. Kept per
 * quarter hour (zones change their offset on one): the CLI's progress line asks at every replay step.
 */
export function zoneLabel(t: number, timeZone: string): string {
  let z = ZONE_LABELS.get(timeZone);
  if (!z) ZONE_LABELS.set(timeZone, (z = { formats: (['shortGeneric', 'short'] as const).map((timeZoneName) => new Intl.DateTimeFormat('en-US', { timeZone, timeZoneName })), quarter: NaN, label: '' }));
  const quarter = Math.floor(t / 900_000);
  if (quarter !== z.quarter) {
    const name = (x: Intl.DateTimeFormat): string => x.formatToParts(t).find((p) => p.type === 'timeZoneName')?.value ?? timeZone;
    const generic = name(z.formats[0]!);
    z.quarter = quarter;
    z.label = /^[A-Z]{1,5}$/.test(generic) ? generic : name(z.formats[1]!);
  }
  return z.label;
}

function round(n: number, digits = 0): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}

function millions(n: number): string {
  return n >= 1e6 ? `${(n / 1e6).toFixed(2)}M` : n >= 1e3 ? `${Math.round(n / 1e3)}k` : String(Math.round(n));
}

type Fact = ReplayResult['scenario']['expect'][number];

/** Pass and distance for a value against a min and/or max: inside a two-sided range, 0 at its centre and 1 at its edges. */
function scoreRange(v: number, min: number | undefined, max: number | undefined, floor: number, strictMin = false): { pass: boolean; error: number } {
  if (min !== undefined && max !== undefined) return { pass: v >= min && v <= max, error: round(Math.abs(v - (min + max) / 2) / Math.max(floor, (max - min) / 2), 3) };
  if (min !== undefined) {
    const pass = strictMin ? v > min : v >= min;
    return { pass, error: pass ? 0 : round((min - v) / Math.max(floor, min), 3) };
  }
  const pass = v <= max!;
  return { pass, error: pass ? 0 : round((v - max!) / Math.max(floor, max!), 3) };
}

function rangeText(min: number | undefined, max: number | undefined, f: (n: number) => string): string {
  if (min !== undefined && max !== undefined) return `${f(min)}–${f(max)}`;
  return min !== undefined ? `≥ ${f(min)}` : `≤ ${f(max!)}`;
}

const pct = (x: number): string => `${(x * 100).toFixed(1)}%`;

/** Scores each sourced fact of the scenario against what the replay produced. */
export function scoreExpectations(r: ReplayResult): Expectation[] {
  const sc = r.scenario;
  const tz = sc.event.timeZone;
  const at = sc.at;
  const roomIndex = (x: Fact): number => (x.room === undefined ? -1 : r.rooms.findIndex((m) => m.name === x.room));
  const roomOf = (x: Fact) => r.rooms[Math.max(0, roomIndex(x))]!;
  const inWindow = (x: { from?: string | undefined; to?: string | undefined }) => {
    const from = x.from === undefined ? -Infinity : at(x.from);
    const to = x.to === undefined ? Infinity : at(x.to);
    return r.series.filter((s) => s.t > from && s.t <= to);
  };
  const between = (x: Fact & { between: [string, string] }, t: number | null, never: string) => {
    const [a, b] = x.between.map(at) as [number, number];
    const pass = t !== null && t >= a && t <= b;
    const error = t === null ? 10 : Math.abs(t - (a + b) / 2) / Math.max(1, (b - a) / 2);
    return { expected: `${x.between[0]}–${x.between[1]}`, actual: t === null ? never : localClock(t, tz), pass, error: round(error, 3) };
  };
  return sc.expect.map((x): Expectation => {
    const tail: { source: string; holdOut?: true } = x.holdOut ? { source: x.source, holdOut: true } : { source: x.source };
    switch (x.kind) {
      case 'liveAt': {
        const room = roomOf(x);
        const [a, b] = x.between.map(at) as [number, number];
        // charts draw the whole space's series: only a fact about the first room (no `room`) has a target on them
        return { name: x.name, ...between(x, room.liveAt, 'never started'), ...tail, ...(x.room === undefined ? { target: { kind: 'liveAt', from: isoOf(a), to: isoOf(b) } as const } : {}) };
      }
      case 'openedAt':
        return { name: x.name, ...between(x, roomOf(x).openedAt, 'never opened'), ...tail };
      case 'endedAt': {
        const room = roomOf(x);
        const b = between(x, room.endedAt, 'never ended');
        const how = room.endedAt === null ? '' : room.crashed ? ' (crashed)' : ' (host ended it)';
        const pass = b.pass && (x.crashed === undefined || x.crashed === room.crashed);
        return { name: x.name, ...b, expected: `${b.expected}${x.crashed === undefined ? '' : x.crashed ? ', crashed' : ', ended by the host'}`, actual: `${b.actual}${how}`, pass, error: pass || !b.pass ? b.error : Math.max(1, b.error), ...tail };
      }
      case 'listenersAt': {
        const t = at(x.at);
        const row = r.series.find((s) => s.t >= t);
        const i = roomIndex(x);
        const n = (i >= 0 ? row?.rooms?.[i]?.listeners : row?.listeners) ?? 0;
        const score = scoreRange(n, x.min, x.max, 1);
        const target = i < 0 && x.min !== undefined && x.max === undefined ? { target: { kind: 'listenersAt', at: isoOf(t), min: x.min } as const } : {};
        return { name: x.name, expected: `${rangeText(x.min, x.max, millions)} at ${x.at}`, actual: millions(n), ...score, ...tail, ...target };
      }
      case 'peakListeners': {
        const i = roomIndex(x);
        let peak = r.peakListeners;
        let peakAt = r.peakAt;
        if (x.from !== undefined || x.to !== undefined || i >= 0) {
          peak = 0;
          peakAt = null;
          for (const s of inWindow(x)) {
            const n = i >= 0 ? (s.rooms?.[i]?.maxListeners ?? 0) : s.maxListeners;
            if (n > peak) [peak, peakAt] = [n, s.t];
          }
        }
        const window = x.from !== undefined || x.to !== undefined ? ` between ${x.from ?? 'the start'} and ${x.to ?? 'the end'}` : '';
        return {
          name: x.name,
          expected: `${rangeText(x.min, x.max, millions)}${window}`,
          actual: `${millions(peak)}${peakAt ? ` at ${localClock(peakAt, tz)}` : ''}`,
          ...scoreRange(peak, x.min, x.max, 1),
          ...tail,
          ...(i < 0 && window === '' && x.min !== undefined && x.max !== undefined ? { target: { kind: 'peakListeners', min: x.min, max: x.max } as const } : {}),
        };
      }
      case 'failureShare': {
        let attempts = 0;
        let failures = 0;
        for (const s of inWindow(x)) {
          attempts += s.attempts;
          failures += s.failures;
        }
        const share = attempts > 0 ? failures / attempts : 0;
        const expected = x.max === undefined ? `> ${Math.round(x.min! * 100)}% of attempts fail` : `${rangeText(x.min, x.max, (v) => `${Math.round(v * 100)}%`)} of attempts fail`;
        const target = x.room === undefined && x.from !== undefined && x.to !== undefined && x.min !== undefined && x.max === undefined ? { target: { kind: 'failureShare', from: isoOf(at(x.from)), to: isoOf(at(x.to)), min: x.min } as const } : {};
        return { name: x.name, expected, actual: `${(share * 100).toFixed(1)}% failed`, ...scoreRange(share, x.min, x.max, 1e-9, true), ...tail, ...target };
      }
      case 'audioGapShare': {
        const i = roomIndex(x);
        let live = 0;
        let gap = 0;
        for (const s of inWindow(x)) {
          const m = i >= 0 ? s.rooms?.[i] : s;
          live += m?.liveListenerSeconds ?? 0;
          gap += m?.gapListenerSeconds ?? 0;
        }
        const share = live > 0 ? gap / live : 0;
        return { name: x.name, expected: `${rangeText(x.min, x.max, pct)} of the audio lost, stalled or echoed`, actual: live > 0 ? `${pct(share)} gapped` : 'nobody listening live', ...scoreRange(share, x.min, x.max, 1e-9), ...tail };
      }
      case 'realAvailability': {
        let attempts = 0;
        let admitted = 0;
        for (const s of inWindow(x)) {
          attempts += s.realAttempts;
          admitted += s.realAdmitted;
        }
        const expected = `${rangeText(x.min, x.max, pct)} of real clients' joins succeed`;
        if (attempts === 0) return { name: x.name, expected, actual: r.withServer ? 'no real join attempts in the window' : 'not measured (model only: no real clients)', pass: false, error: 1, ...tail };
        const share = admitted / attempts;
        return { name: x.name, expected, actual: `${pct(share)} of ${attempts} joins`, ...scoreRange(share, x.min, x.max, 1e-9), ...tail };
      }
      case 'recordingAvailable': {
        const actual = r.recordingAvailable === null ? (r.endedAt !== null ? 'space ended normally (model only; no server to check the file)' : 'not ended') : r.recordingAvailable ? 'published and complete' : `missing or incomplete${r.recordingProblem ? `: ${r.recordingProblem}` : ''}`;
        const pass = r.recordingAvailable === true || (r.recordingAvailable === null && r.endedAt !== null);
        return { name: x.name, expected: 'downloadable and complete after the end', actual, pass, error: pass ? 0 : 1, ...tail };
      }
    }
  });
}

/** Mean distance over the facts a fit may use, and over those held out (null when none are). */
export function splitErrors(expectations: Expectation[]): { fitted: number; heldOut: number | null } {
  const mean = (xs: Expectation[]): number => (xs.length ? round(xs.reduce((a, e) => a + e.error, 0) / xs.length, 3) : 0);
  const held = expectations.filter((e) => e.holdOut);
  return { fitted: mean(expectations.filter((e) => !e.holdOut)), heldOut: held.length ? mean(held) : null };
}

export function buildReport(r: ReplayResult, run?: RunMeta): Report {
  const sc = r.scenario;
  const tz = sc.event.timeZone;
  const expectations = scoreExpectations(r);
  const passed = expectations.filter((e) => e.pass).length;
  const fidelity = expectations.length ? round(passed / expectations.length, 3) : 0;
  const meanError = expectations.length ? round(expectations.reduce((a, e) => a + e.error, 0) / expectations.length, 3) : 0;
  const delay = r.liveAt === null ? null : round((r.liveAt - sc.scheduledStartMs) / 60_000, 1);
  const lines = [
    `${sc.event.name}`,
    `  scheduled ${localClock(sc.scheduledStartMs, tz)}, live ${r.liveAt === null ? 'never' : `${localClock(r.liveAt, tz)} (${delay} min late)`}, peak ${millions(r.peakListeners)}${r.peakAt ? ` at ${localClock(r.peakAt, tz)}` : ''}`,
    `  fidelity ${passed}/${expectations.length} facts met`,
    ...(run?.realListeners ? [realListenersLine(run.realListeners)] : []),
    ...(run?.schedule && run.schedule.maxBehindMs >= BEHIND_WORTH_SAYING_MS ? [`  behind schedule: ${scheduleText(run.schedule)}`] : []),
    ...(r.timeline
      ? r.rooms.map((m) => `  room ${m.name} (${m.host}): opened ${m.openedAt === null ? 'never' : localClock(m.openedAt, tz)}, live ${m.liveAt === null ? 'never' : localClock(m.liveAt, tz)}, ${m.endedAt === null ? 'not ended' : `${m.crashed ? 'crashed' : 'ended'} ${localClock(m.endedAt, tz)}`}, peak ${millions(m.peakListeners)}`)
      : []),
    ...expectations.map((e) => `  ${e.pass ? 'PASS' : 'FAIL'}  ${e.holdOut ? '(held out) ' : ''}${e.name}: ${e.actual}`),
  ];
  const split = splitErrors(expectations);
  return {
    ...(run ? { run } : {}),
    scenario: sc.event.name,
    file: sc.file,
    ...(sc.overrides.length ? { overrides: sc.overrides } : {}),
    account: sc.event.account,
    seed: r.seed,
    speed: r.speed,
    withServer: r.withServer,
    timeZone: tz,
    scheduledAt: new Date(sc.scheduledStartMs).toISOString(),
    liveAt: iso(r.liveAt),
    startDelayMinutes: delay,
    endedAt: iso(r.endedAt),
    peakListeners: Math.round(r.peakListeners),
    peakAt: iso(r.peakAt),
    expectations,
    fidelity,
    meanError,
    events: r.events.map((e) => ({ t: new Date(e.t).toISOString(), text: e.text })),
    series: r.series.map((s) => ({
      t: new Date(s.t).toISOString(),
      phase: s.phase,
      listeners: Math.round(s.listeners),
      realListeners: s.realListeners,
      availability: round(s.availability, 4),
      realAvailability: s.realAvailability === null ? null : round(s.realAvailability, 4),
      offered: round(s.offered, 1),
      admitted: round(s.admitted, 1),
      attack: round(s.attack, 1),
      latencyP50Ms: round(s.latencyP50Ms),
      latencyP99Ms: round(s.latencyP99Ms),
      ...(s.rooms
        ? {
            audioGapShare: round(s.audioGapShare ?? 0, 4),
            rooms: s.rooms.map((m) => ({ name: m.name, phase: m.phase, listeners: Math.round(m.listeners), audioGapShare: round(m.audioGapShare, 4) })),
          }
        : {}),
    })),
    ...(r.timeline
      ? {
          rooms: r.rooms.map((m) => ({ name: m.name, host: m.host, account: m.account, openedAt: iso(m.openedAt), liveAt: iso(m.liveAt), endedAt: iso(m.endedAt), crashed: m.crashed, peakListeners: Math.round(m.peakListeners), peakAt: iso(m.peakAt) })),
        }
      : {}),
    ...(split.heldOut !== null ? { fittedError: split.fitted, heldOutError: split.heldOut } : {}),
    summary: lines.join('\n'),
  };
}

function realListenersLine(x: RealListenersShare): string {
  return `  real listeners: ${x.listeners.toLocaleString('en-US')} in ${whereRealListenersRan(x)}; peak ${x.peakConnected.toLocaleString('en-US')} in, ${x.joins.admitted.toLocaleString('en-US')} of ${x.joins.attempts.toLocaleString('en-US')} joins admitted, audio p99 ${ms(x.audio.p99Ms)}`;
}

/** Which account of the night fits the facts better: most facts met, then the smallest mean error. */
export function compareAccounts(reports: Report[]): { best: Report; ranking: { scenario: string; account: string; fidelity: number; meanError: number; liveAt: string | null }[] } {
  if (reports.length === 0) throw new RangeError('nothing to compare');
  const ranked = [...reports].sort((a, b) => b.fidelity - a.fidelity || a.meanError - b.meanError);
  return { best: ranked[0]!, ranking: ranked.map((r) => ({ scenario: r.scenario, account: r.account, fidelity: r.fidelity, meanError: r.meanError, liveAt: r.liveAt })) };
}

/** The run's provenance as label/value pairs, shared by report.md, report.html and compare. */
export function runFacts(r: Report): [string, string][] {
  const rows: [string, string][] = [];
  const run = r.run;
  rows.push(['scenario', run ? `${run.scenarioFile} (sha256 ${run.scenarioSha256.slice(0, 12)})` : r.file]);
  rows.push(['overrides', run && run.overrides.length ? run.overrides.join('  ') : 'none']);
  rows.push(['seed', String(r.seed)]);
  rows.push(['speed', r.speed === 'max' ? 'max' : `${r.speed}×`]);
  rows.push(['mode', r.withServer ? 'server live with real clients' : 'model only']);
  if (run?.cluster) {
    const n = (x: number): string => x.toLocaleString('en-US');
    const each = run.cluster.perInstance.map((i) => `${i.id}: peak ${n(i.peakListeners)} real listeners, ${n(i.joinsAdmitted)} joins admitted, ${n(i.chunksSent)} chunks sent`);
    rows.push(['instances', `${run.cluster.instances} behind haproxy, sharing the space through Redis (the model runs on the replay's own instance) — ${each.join('; ')}`]);
  }
  if (run?.realListeners) {
    const x = run.realListeners;
    const n = (v: number): string => v.toLocaleString('en-US');
    const closes = Object.entries(x.closes).map(([code, k]) => `${code} ×${n(k)}`).join(', ') || 'none';
    const each = x.perWorker?.map((w, i) => `worker ${i + 1}: ${n(w.joinsAdmitted)} joins admitted, ${n(w.chunks)} chunks`).join('; ');
    rows.push([
      'real listeners',
      `${n(x.listeners)} in ${whereRealListenersRan(x)}: peak ${n(x.peakConnected)} connected; ${n(x.joins.admitted)} of ${n(x.joins.attempts)} joins admitted (p50 ${ms(x.joins.p50Ms)}, p99 ${ms(x.joins.p99Ms)}); ${n(x.audio.chunks)} audio chunks heard, ${n(x.audio.gaps)} missing, delay p50 ${ms(x.audio.p50Ms)}, p99 ${ms(x.audio.p99Ms)}, max ${ms(x.audio.maxMs)}; closes ${closes}${each ? ` — ${each}` : ''}`,
    ]);
  }
  if (run?.schedule) rows.push(['schedule', scheduleText(run.schedule)]);
  if (run) {
    rows.push(['tool', run.tool]);
    rows.push(['run', `${run.startedAt} → ${run.finishedAt}`]);
  }
  return rows;
}

/** report.md: the run, links to the chart SVGs written beside it, facts, events and a 5-minute timeline. */
export function renderMarkdown(r: Report, chartFiles: { file: string; title: string }[] = []): string {
  const tz = r.timeZone;
  const clock = (t: string | null): string => (t === null ? '—' : localClock(Date.parse(t), tz));
  const pct = (x: number | null): string => (x === null ? '—' : `${(x * 100).toFixed(1)}%`);
  const out: string[] = [];
  out.push(`# Replay: ${r.scenario}`, '');
  out.push(...runFacts(r).map(([k, v]) => `- ${k}: ${k === 'overrides' && v !== 'none' ? `\`${v}\`` : v}`), `- account: ${r.account}`, '');
  out.push(`- Scheduled: **${clock(r.scheduledAt)}** · on air: **${clock(r.liveAt)}**${r.startDelayMinutes !== null ? ` (${r.startDelayMinutes} min late)` : ''} · ended: ${clock(r.endedAt)}`);
  out.push(`- Peak: **${r.peakListeners.toLocaleString('en-US')}** listeners at ${clock(r.peakAt)}`);
  out.push(`- Fidelity: **${r.expectations.filter((e) => e.pass).length}/${r.expectations.length}** facts met (score ${r.fidelity}, mean distance from the facts ${r.meanError})`, '');
  if (r.heldOutError !== undefined) out.push(`- Mean distance on the facts a fit may use: ${r.fittedError}; on the held-out facts: ${r.heldOutError}`, '');
  if (r.rooms) {
    out.push('## Rooms', '', '| room | host | account | opened | live | ended | peak |', '|---|---|---|---|---|---|---|');
    for (const m of r.rooms) out.push(`| ${m.name} | ${m.host} | ${m.account} | ${clock(m.openedAt)} | ${clock(m.liveAt)} | ${m.endedAt === null ? '—' : `${clock(m.endedAt)}${m.crashed ? ' (crashed)' : ''}`} | ${m.peakListeners.toLocaleString('en-US')} |`);
    out.push('');
  }
  if (chartFiles.length) {
    out.push('## Charts', '');
    for (const c of chartFiles) out.push(`![${c.title}](${c.file})`, '');
  }
  out.push('## Facts', '', '| fact | expected | replay | | source |', '|---|---|---|---|---|');
  for (const e of r.expectations) out.push(`| ${e.holdOut ? '(held out) ' : ''}${e.name} | ${e.expected} | ${e.actual} | ${e.pass ? '✅ pass' : '❌ fail'} | ${e.source} |`);
  out.push('', '## Events', '', '| time | event |', '|---|---|');
  for (const e of r.events) out.push(`| ${clock(e.t)} | ${e.text} |`);
  const rooms = r.rooms !== undefined;
  out.push('', '## Timeline (every 5 simulated minutes)', '', `| time | phase | listeners | real | join availability | real clients' availability | offered/s | admitted/s | attack/s | p99 ms |${rooms ? ' rooms: listeners, phase, audio gap |' : ''}`, `|---|---|---|---|---|---|---|---|---|---|${rooms ? '---|' : ''}`);
  for (const s of r.series) {
    if (new Date(s.t).getUTCMinutes() % 5 !== 0) continue;
    out.push(`| ${clock(s.t)} | ${s.phase} | ${s.listeners.toLocaleString('en-US')} | ${s.realListeners} | ${pct(s.availability)} | ${pct(s.realAvailability)} | ${Math.round(s.offered).toLocaleString('en-US')} | ${Math.round(s.admitted).toLocaleString('en-US')} | ${Math.round(s.attack).toLocaleString('en-US')} | ${s.latencyP99Ms} |${s.rooms ? ` ${s.rooms.map((m) => `${m.name} ${m.listeners.toLocaleString('en-US')} ${m.phase}${m.audioGapShare > 0 ? ` ${pct(m.audioGapShare)}` : ''}`).join(' · ')} |` : ''}`);
  }
  out.push('');
  return out.join('\n');
}

