import { mkdir } from 'node:fs/promises';
import { basename, extname, join } from 'node:path';
import { escapeXml as esc, overlayCharts, renderSvg, type LabelledRun } from './charts.js';
import { localClock, type Report } from './report.js';
import { writeAtomic } from '../write-atomic.js';

/** What a comparison shows of one run. */
export interface CompareRow {
  label: string;
  scenarioFile: string;
  overrides: string[];
  seed: number;
  onAirAt: string | null;
  startDelayMinutes: number | null;
  peakListeners: number;
  peakAt: string | null;
  /** Share of join attempts failing over the scenario's failure-share window, as the report scored it. */
  failureShare: string | null;
  factsMet: number;
  facts: number;
  meanError: number;
  /** What differs from the first run, in words ("on air 20:45 → 20:31 (14 min earlier)"); empty for the first. */
  changes: string[];
}

/** A name for a run in a comparison: the scenario's file stem and its overrides. */
export function runLabel(r: Report): string {
  const file = r.run?.scenarioFile ?? r.file;
  const stem = basename(file, extname(file));
  const overrides = r.run?.overrides ?? [];
  return overrides.length ? `${stem} + ${overrides.map((o) => o.replace(/^assumptions\./, '')).join(' ')}` : stem;
}

/** Labels for a set of runs, made unique (by seed, then by position) where two would read the same. */
export function labelRuns(reports: Report[]): LabelledRun[] {
  const labels = reports.map(runLabel);
  const dup = (l: string): boolean => labels.filter((x) => x === l).length > 1;
  const withSeed = labels.map((l, i) => (dup(l) ? `${l} (seed ${reports[i]!.seed})` : l));
  return reports.map((report, i) => ({ report, label: withSeed.filter((x) => x === withSeed[i]).length > 1 ? `${withSeed[i]} #${i + 1}` : withSeed[i]! }));
}

const millions = (n: number): string => (n >= 1e6 ? `${(n / 1e6).toFixed(2)}M` : n >= 1e3 ? `${Math.round(n / 1e3)}k` : String(Math.round(n)));

function failureShare(r: Report): string | null {
  const e = r.expectations.find((x) => x.target?.kind === 'failureShare');
  return e ? e.actual : null;
}

function changesFrom(base: Report, r: Report, clock: (t: string | null) => string): string[] {
  const out: string[] = [];
  const bFile = base.run?.scenarioFile ?? base.file;
  const rFile = r.run?.scenarioFile ?? r.file;
  if (bFile !== rFile) out.push(`scenario ${rFile} (not ${bFile})`);
  else if (base.run && r.run && base.run.scenarioSha256 !== r.run.scenarioSha256) out.push('scenario file edited between the runs');
  const bo = (base.run?.overrides ?? []).join(' ');
  const ro = (r.run?.overrides ?? []).join(' ');
  if (bo !== ro) out.push(ro ? `overrides ${ro}` : 'no overrides');
  if (base.seed !== r.seed) out.push(`seed ${base.seed} → ${r.seed}`);
  if (base.liveAt !== r.liveAt) {
    if (r.liveAt === null) out.push('never went on air');
    else if (base.liveAt === null) out.push(`on air at ${clock(r.liveAt)} (the first never was)`);
    else {
      const d = Math.round((Date.parse(r.liveAt) - Date.parse(base.liveAt)) / 60_000);
      if (clock(base.liveAt) !== clock(r.liveAt)) out.push(`on air ${clock(base.liveAt)} → ${clock(r.liveAt)} (${d === 0 ? 'same minute' : `${Math.abs(d)} min ${d < 0 ? 'earlier' : 'later'}`})`);
    }
  }
  if (millions(base.peakListeners) !== millions(r.peakListeners)) out.push(`peak ${millions(base.peakListeners)} → ${millions(r.peakListeners)}`);
  const bf = failureShare(base);
  const rf = failureShare(r);
  if (bf !== rf && rf !== null) out.push(`${rf} in the failure window (was ${bf ?? '—'})`);
  const met = (x: Report): number => x.expectations.filter((e) => e.pass).length;
  if (met(base) !== met(r)) out.push(`facts met ${met(base)}/${base.expectations.length} → ${met(r)}/${r.expectations.length}`);
  const newlyFailed = r.expectations.filter((e) => !e.pass && base.expectations.find((b) => b.name === e.name)?.pass).map((e) => e.name);
  if (newlyFailed.length) out.push(`now fails: ${newlyFailed.join('; ')}`);
  return out;
}

/** Rows of a comparison: the first run is the baseline every other run is described against. */
export function compareRuns(runs: LabelledRun[]): CompareRow[] {
  if (runs.length === 0) throw new RangeError('nothing to compare');
  const base = runs[0]!.report;
  const clock = (t: string | null): string => (t === null ? '—' : localClock(Date.parse(t), base.timeZone));
  return runs.map(({ label, report: r }, i) => ({
    label,
    scenarioFile: r.run?.scenarioFile ?? r.file,
    overrides: r.run?.overrides ?? [],
    seed: r.seed,
    onAirAt: r.liveAt === null ? null : clock(r.liveAt),
    startDelayMinutes: r.startDelayMinutes,
    peakListeners: r.peakListeners,
    peakAt: r.peakAt === null ? null : clock(r.peakAt),
    failureShare: failureShare(r),
    factsMet: r.expectations.filter((e) => e.pass).length,
    facts: r.expectations.length,
    meanError: r.meanError,
    changes: i === 0 ? [] : changesFrom(base, r, clock),
  }));
}

/** The comparison as terminal lines (what `stampede compare` prints). */
export function compareText(rows: CompareRow[]): string {
  const out: string[] = [];
  rows.forEach((r, i) => {
    out.push(`${i === 0 ? 'baseline' : `run ${i + 1}`}: ${r.label}`);
    out.push(`  on air ${r.onAirAt ?? 'never'}${r.startDelayMinutes !== null ? ` (${r.startDelayMinutes} min late)` : ''} · peak ${millions(r.peakListeners)}${r.peakAt ? ` at ${r.peakAt}` : ''} · ${r.failureShare ?? '—'} · facts ${r.factsMet}/${r.facts} (mean distance ${r.meanError})`);
    if (i > 0) out.push(`  changed: ${r.changes.length ? r.changes.join('; ') : 'nothing the report can see'}`);
  });
  return out.join('\n');
}

function markdown(rows: CompareRow[], charts: { id: string; title: string }[]): string {
  const out = ['# Comparison', '', '| run | on air | peak | failure window | facts met | mean distance | what changed (vs the first) |', '|---|---|---|---|---|---|---|'];
  for (const r of rows) {
    out.push(`| ${r.label} | ${r.onAirAt ?? 'never'}${r.startDelayMinutes !== null ? ` (+${r.startDelayMinutes} min)` : ''} | ${millions(r.peakListeners)}${r.peakAt ? ` at ${r.peakAt}` : ''} | ${r.failureShare ?? '—'} | ${r.factsMet}/${r.facts} | ${r.meanError} | ${r.changes.join('; ') || (r === rows[0] ? 'baseline' : 'nothing')} |`);
  }
  out.push('', '## Charts', '');
  for (const c of charts) out.push(`![${c.title}](${c.id}.svg)`, '');
  return out.join('\n');
}

function html(rows: CompareRow[], svgs: { id: string; title: string; svg: string }[]): string {
  const out = [
    '<!doctype html>',
    '<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>Stampede comparison</title>',
    '<style>body{font:15px/1.45 system-ui,sans-serif;margin:0 auto;max-width:60rem;padding:1rem;color:#111}h1{font-size:1.5rem}figure{margin:1.2rem 0}figcaption{font-weight:600}.chart{overflow-x:auto}.chart svg{width:100%;min-width:540px;max-width:880px;height:auto;display:block}.scroll{overflow-x:auto}table{border-collapse:collapse;font-size:.88rem}th,td{border-bottom:1px solid #e5e5e5;padding:.25rem .5rem;text-align:left;vertical-align:top;overflow-wrap:anywhere}td:first-child{min-width:12rem}</style>',
    '</head><body><h1>Comparison</h1>',
    '<div class="scroll"><table><thead><tr><th>run</th><th>on air</th><th>peak</th><th>failure window</th><th>facts met</th><th>mean distance</th><th>what changed (vs the first)</th></tr></thead><tbody>',
  ];
  for (const r of rows) {
    out.push(`<tr><td>${esc(r.label)}</td><td>${esc(r.onAirAt ?? 'never')}</td><td>${millions(r.peakListeners)}${r.peakAt ? ` at ${r.peakAt}` : ''}</td><td>${esc(r.failureShare ?? '—')}</td><td>${r.factsMet}/${r.facts}</td><td>${r.meanError}</td><td>${esc(r.changes.join('; ') || (r === rows[0] ? 'baseline' : 'nothing'))}</td></tr>`);
  }
  out.push('</tbody></table></div>');
  for (const s of svgs) out.push(`<figure id="${s.id}"><figcaption>${esc(s.title)}</figcaption><div class="chart" tabindex="0">${s.svg}</div></figure>`);
  out.push('</body></html>', '');
  return out.join('\n');
}

/** Writes compare.json, compare.md, compare.html and the overlay SVGs into `dir`. */
export async function writeCompare(dir: string, runs: LabelledRun[], extra: Record<string, unknown> = {}): Promise<{ rows: CompareRow[]; jsonPath: string; mdPath: string; htmlPath: string }> {
  const rows = compareRuns(runs);
  const charts = overlayCharts(runs);
  const svgs = await Promise.all(charts.map(async (c) => ({ id: c.id, title: c.title, svg: await renderSvg(c) })));
  await mkdir(dir, { recursive: true });
  for (const s of svgs) await writeAtomic(join(dir, `${s.id}.svg`), s.svg);
  const mdPath = join(dir, 'compare.md');
  const htmlPath = join(dir, 'compare.html');
  const jsonPath = join(dir, 'compare.json');
  await writeAtomic(mdPath, markdown(rows, charts));
  await writeAtomic(htmlPath, html(rows, svgs));
  await writeAtomic(jsonPath, `${JSON.stringify({ ...extra, runs: rows }, null, 2)}\n`);
  return { rows, jsonPath, mdPath, htmlPath };
}
