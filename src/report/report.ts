import type { MinuteRow, ReplayResult } from '../sim/index.js';

export interface Expectation {
  name: string;
  expected: string;
  actual: string;
  pass: boolean;
  /** How far the replay is from the fact: 0 on target, 1 at the edge of the accepted range, more outside. */
  error: number;
  source: string;
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
}

/** A minute of the replay as written to report.json: the runner's row with an ISO time and no raw counts. */
export type SeriesRow = Omit<MinuteRow, 't' | 'attempts' | 'failures' | 'realAttempts' | 'realAdmitted'> & { t: string };

export interface Report {
  /** Present on runs written by the CLI; absent on reports built in code. */
  run?: RunMeta;
  scenario: string;
  file: string;
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
  /** A few lines for a terminal. */
  summary: string;
}

const isoOf = (t: number): string => new Date(t).toISOString();
const iso = (t: number | null): string | null => (t === null ? null : isoOf(t));

export function localClock(t: number, timeZone: string): string {
  return new Date(t).toLocaleTimeString('en-US', { timeZone, hour: '2-digit', minute: '2-digit', hour12: false });
}

function round(n: number, digits = 0): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}

function millions(n: number): string {
  return n >= 1e6 ? `${(n / 1e6).toFixed(2)}M` : n >= 1e3 ? `${Math.round(n / 1e3)}k` : String(Math.round(n));
}

/** Scores each sourced fact of the scenario against what the replay produced. */
export function scoreExpectations(r: ReplayResult): Expectation[] {
  const sc = r.scenario;
  const tz = sc.event.timeZone;
  const at = sc.at;
  return sc.expect.map((x): Expectation => {
    switch (x.kind) {
      case 'liveAt': {
        const [a, b] = x.between.map(at) as [number, number];
        const pass = r.liveAt !== null && r.liveAt >= a && r.liveAt <= b;
        const error = r.liveAt === null ? 10 : Math.abs(r.liveAt - (a + b) / 2) / Math.max(1, (b - a) / 2);
        return { name: x.name, expected: `${x.between[0]}–${x.between[1]}`, actual: r.liveAt === null ? 'never started' : localClock(r.liveAt, tz), pass, error: round(error, 3), source: x.source, target: { kind: 'liveAt', from: isoOf(a), to: isoOf(b) } };
      }
      case 'listenersAt': {
        const t = at(x.at);
        const row = r.series.find((s) => s.t >= t);
        const n = row?.listeners ?? 0;
        return { name: x.name, expected: `≥ ${millions(x.min)} at ${x.at}`, actual: millions(n), pass: n >= x.min, error: n >= x.min ? 0 : round((x.min - n) / Math.max(1, x.min), 3), source: x.source, target: { kind: 'listenersAt', at: isoOf(t), min: x.min } };
      }
      case 'peakListeners':
        return {
          name: x.name,
          expected: `${millions(x.min)}–${millions(x.max)}`,
          actual: `${millions(r.peakListeners)}${r.peakAt ? ` at ${localClock(r.peakAt, tz)}` : ''}`,
          pass: r.peakListeners >= x.min && r.peakListeners <= x.max,
          error: round(Math.abs(r.peakListeners - (x.min + x.max) / 2) / Math.max(1, (x.max - x.min) / 2), 3),
          source: x.source,
          target: { kind: 'peakListeners', min: x.min, max: x.max },
        };
      case 'failureShare': {
        const from = at(x.from);
        const to = at(x.to);
        let attempts = 0;
        let failures = 0;
        for (const s of r.series) {
          if (s.t > from && s.t <= to) {
            attempts += s.attempts;
            failures += s.failures;
          }
        }
        const share = attempts > 0 ? failures / attempts : 0;
        return {
          name: x.name,
          expected: `> ${Math.round(x.min * 100)}% of attempts fail`,
          actual: `${(share * 100).toFixed(1)}% failed`,
          pass: share > x.min,
          error: share > x.min ? 0 : round((x.min - share) / Math.max(1e-9, x.min), 3),
          source: x.source,
          target: { kind: 'failureShare', from: isoOf(from), to: isoOf(to), min: x.min },
        };
      }
      case 'recordingAvailable': {
        const actual = r.recordingAvailable === null ? (r.endedAt !== null ? 'space ended normally (model only; no server to check the file)' : 'not ended') : r.recordingAvailable ? 'published and complete' : 'missing or incomplete';
        const pass = r.recordingAvailable === true || (r.recordingAvailable === null && r.endedAt !== null);
        return { name: x.name, expected: 'downloadable and complete after the end', actual, pass, error: pass ? 0 : 1, source: x.source };
      }
    }
  });
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
    ...expectations.map((e) => `  ${e.pass ? 'PASS' : 'FAIL'}  ${e.name}: ${e.actual}`),
  ];
  return {
    ...(run ? { run } : {}),
    scenario: sc.event.name,
    file: sc.file,
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
    })),
    summary: lines.join('\n'),
  };
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
  if (chartFiles.length) {
    out.push('## Charts', '');
    for (const c of chartFiles) out.push(`![${c.title}](${c.file})`, '');
  }
  out.push('## Facts', '', '| fact | expected | replay | | source |', '|---|---|---|---|---|');
  for (const e of r.expectations) out.push(`| ${e.name} | ${e.expected} | ${e.actual} | ${e.pass ? '✅ pass' : '❌ fail'} | ${e.source} |`);
  out.push('', '## Events', '', '| time | event |', '|---|---|');
  for (const e of r.events) out.push(`| ${clock(e.t)} | ${e.text} |`);
  out.push('', '## Timeline (every 5 simulated minutes)', '', '| time | phase | listeners | real | join availability | real clients\' availability | offered/s | admitted/s | attack/s | p99 ms |', '|---|---|---|---|---|---|---|---|---|---|');
  for (const s of r.series) {
    if (new Date(s.t).getUTCMinutes() % 5 !== 0) continue;
    out.push(`| ${clock(s.t)} | ${s.phase} | ${s.listeners.toLocaleString('en-US')} | ${s.realListeners} | ${pct(s.availability)} | ${pct(s.realAvailability)} | ${Math.round(s.offered).toLocaleString('en-US')} | ${Math.round(s.admitted).toLocaleString('en-US')} | ${Math.round(s.attack).toLocaleString('en-US')} | ${s.latencyP99Ms} |`);
  }
  out.push('');
  return out.join('\n');
}
