import { median } from 'simple-statistics';
import type { OverloadPoint, OverloadSeries } from '../run.js';
import type { Entry } from './entries.js';
import { estimate } from './stats.js';

/** latest.md and overload.svg, drawn from the same data that goes into latest.json. */

const fmt = (x: number | null | undefined): string => {
  if (x === null || x === undefined || !Number.isFinite(x)) return '—';
  const a = Math.abs(x);
  return a >= 1000 ? Math.round(x).toLocaleString('en-US') : a >= 10 ? x.toFixed(1) : a >= 1 ? x.toFixed(2) : x.toFixed(3);
};
const ci = (x: [number, number] | null) => (x ? `[${fmt(x[0])}, ${fmt(x[1])}]` : '');

interface CellRow {
  contestant: string;
  listeners: number;
  connected: number;
  serverRssPerListenerKiB: number;
  swarmRssPerListenerKiB: number;
  /** Absent in results written before issue #15's session 8. */
  serverMemPerListenerKiB?: { rss: number[]; heapUsed: number[] };
  flags: string[];
  /** Absent in results written before issue #15's session 11 (one process per cell). */
  processes?: { chunksPerCpuSec: number; vsFirst: { ratio: number; ci: [number, number] } | null }[];
  rounds: { chunksPerCpuSec: number; userMicrosPerChunk: number; systemMicrosPerChunk: number; p50Ms: number; p99Ms: number; deliveredRatio: number }[];
}

export function renderMarkdown(meta: { date: string; node: string; cpus: number; pinning: { server: string | null; client: string | null }; loadAverage: { before: number[]; after: number[] }; minutes: number; skipped?: { part: string; reason: string }[]; config: { rounds: number; measureMs: number } }, entries: Entry[], raw: Record<string, unknown>): string {
  const out: string[] = [];
  const la = (xs: number[]) => xs.map((x) => x.toFixed(2)).join(' / ');
  out.push('# Benchmark results', '');
  out.push(`${meta.date}, Node ${meta.node}, ${meta.cpus} CPUs; servers pinned to CPU ${meta.pinning.server ?? '(not pinned)'}, clients to CPU ${meta.pinning.client ?? '(not pinned)'}. Rounds as run, in shuffled order: ${roundsAsRun(raw, meta.config.measureMs)}. Load average (1/5/15 min) before ${la(meta.loadAverage.before)}, after ${la(meta.loadAverage.after)}; ${meta.minutes} min.`, '');
  for (const k of meta.skipped ?? []) out.push(`**Skipped: the ${k.part} part** — ${k.reason}.`, '');
  out.push('Medians of the rounds with bootstrap 95% intervals. A ratio is **real** when its whole interval lies on one side of 1.', '');
  out.push('| part | measure | Stampede | baseline | ratio | difference | target |', '|---|---|---|---|---|---|---|');
  for (const e of entries) {
    const target = e.target ? `${e.target.text}: ${e.target.met === null ? 'n/a' : e.target.met ? '**met**' : 'not met'}` : '';
    const verdict = e.excluded ? `excluded (${e.excluded})` : e.verdict === 'not distinguishable' ? 'not distinguishable' : `real (${e.verdict})`;
    out.push(`| ${e.part} | ${e.name} | ${fmt(e.figure)} ${e.unit} ${ci(e.figureCI)} | ${fmt(e.baseline)} ${ci(e.baselineCI)} (${e.baselineName}) | ${e.ratio === null ? '—' : `${fmt(e.ratio)}× ${ci(e.ratioCI)}`} | ${verdict} | ${target} |`);
  }
  const cells = raw.fanout as CellRow[] | undefined;
  if (cells) {
    out.push('', '## Fan-out cells', '', 'Per contestant and size: medians of the rounds (bootstrap intervals are in latest.json entries; every round and its two windows are in `raw.fanout`). Between processes: each server process\'s median chunks per CPU-second, and its ratio to the first process\'s [bootstrap 95% interval] — the same build in another process.', '');
    out.push('| listeners | contestant | connected | chunks per CPU-s | between processes: chunks per CPU-s (ratio to the first) | user µs/chunk | system µs/chunk | p50 / p99 ms | delivered | server KiB/listener: RSS less young gen (RSS; heap used) | swarm KiB/listener | flags |', '|---|---|---|---|---|---|---|---|---|---|---|---|');
    for (const c of cells) {
      const m = (k: keyof CellRow['rounds'][number]) => (c.rounds.length ? median(c.rounds.map((r) => r[k])) : NaN);
      out.push(`| ${c.listeners.toLocaleString('en-US')} | ${c.contestant} | ${c.connected.toLocaleString('en-US')} | ${fmt(m('chunksPerCpuSec'))} | ${byProcess(c)} | ${fmt(m('userMicrosPerChunk'))} | ${fmt(m('systemMicrosPerChunk'))} | ${fmt(m('p50Ms'))} / ${fmt(m('p99Ms'))} | ${(m('deliveredRatio') * 100).toFixed(1)}% | ${fmt(c.serverRssPerListenerKiB)}${c.serverMemPerListenerKiB ? ` (${fmt(median(c.serverMemPerListenerKiB.rss))}; ${fmt(median(c.serverMemPerListenerKiB.heapUsed))})` : ''} | ${fmt(c.swarmRssPerListenerKiB)} | ${c.flags.join('; ')} |`);
    }
  }
  const budget = raw.overloadBudget as OverloadSeries | undefined;
  if (budget) out.push('', '## Graceful overload at the join admission budget', '', ...overloadTable(budget));
  const ov = raw.overload as OverloadSeries | undefined;
  if (ov) out.push('', '## Graceful overload at the HTTP maximum', '', ...overloadTable(ov));
  return `${out.join('\n')}\n`;
}

/** Each process's median, and after the first its ratio to the first's with the interval: the spread of one build between processes. */
function byProcess(c: CellRow): string {
  if (!c.processes || c.processes.length < 2) return '—';
  return c.processes.map((p) => `${fmt(p.chunksPerCpuSec)}${p.vsFirst ? ` (${fmt(p.vsFirst.ratio)}× ${ci(p.vsFirst.ci)})` : ''}`).join('; ');
}

/** How many rounds each part that ran took, counted from the rounds it recorded (each part has its own setting). */
export function roundsAsRun(raw: Record<string, unknown>, measureMs: number): string {
  const counts = (xs: number[]) => {
    const u = [...new Set(xs)].sort((a, b) => a - b);
    return u.length > 1 ? `${u[0]}–${u.at(-1)}` : String(u[0] ?? 0);
  };
  const rounds = (n: number | string) => `${n} round${n === 1 || n === '1' ? '' : 's'}`;
  const out: string[] = [];
  const cells = raw.fanout as CellRow[] | undefined;
  if (cells?.length) {
    // results written before session 11 have one window per round and one process per cell
    const twoWindows = cells.some((c) => (c.rounds[0] as { windows?: unknown[] } | undefined)?.windows);
    const procs = counts(cells.map((c) => c.processes?.length ?? 1));
    out.push(twoWindows ? `fan-out ${rounds(counts(cells.map((c) => c.rounds.length)))} per cell of two windows of ${measureMs / 2} ms each (a palindromic order), over ${procs} server process${procs === '1' ? '' : 'es'} per cell` : `fan-out ${counts(cells.map((c) => c.rounds.length))} windows of ${measureMs} ms per cell`);
  }
  const join = raw.join as Record<string, unknown[]> | undefined;
  if (join) out.push(`join ${rounds(counts(Object.values(join).map((r) => r.length)))} per case after a warm-up round`);
  for (const [key, what] of [
    ['overloadBudget', 'at the join budget'],
    ['overload', 'at the HTTP maximum'],
  ] as const) {
    const ov = raw[key] as OverloadSeries | undefined;
    if (ov) out.push(`overload ${what} ${rounds(new Set(ov.points.map((p) => p.round)).size)} per point${ov.warmup?.length ? ' after a warm-up point' : ''}`);
  }
  const metrics = raw.metrics as { busy?: { ms?: unknown[] }; rounds?: unknown[] } | undefined;
  // results written before the part was interleaved have no rounds
  if (metrics?.busy?.ms) out.push(`/metrics ${metrics.rounds ? `${rounds(metrics.rounds.length)} of adjacent windows, ` : ''}${metrics.busy.ms.length} scrapes each idle and busy`);
  const replay = raw.replay as { small?: unknown[] } | undefined;
  if (replay?.small) out.push(`replay ${rounds(replay.small.length)}`);
  // scale-out rounds are one per cluster size, load-worker rounds one per worker count
  for (const [key, label, by] of [
    ['cluster', 'scale-out', 'instances'],
    ['workers', 'load workers', 'workers'],
  ] as const) {
    const part = raw[key] as { rounds?: Record<string, unknown>[] } | undefined;
    if (!part?.rounds?.length) continue;
    const per = new Map<unknown, number>();
    for (const r of part.rounds) per.set(r[by], (per.get(r[by]) ?? 0) + 1);
    out.push(`${label} ${rounds(counts([...per.values()]))} per ${by === 'instances' ? 'cluster' : 'worker count'}`);
  }
  return out.join('; ') || 'none';
}

/** One series as a table: medians of the rounds, goodput ÷ capacity and the p99 of admitted joins with their bootstrap 95% intervals. */
function overloadTable(ov: OverloadSeries): string[] {
  // results written before the budget series have no definition: they are the HTTP maximum
  const what = ov.definition === 'budget' ? 'budget' : 'capacity';
  const out = [`${what === 'budget' ? 'Join budget' : 'Capacity'} ${ov.capacity.toLocaleString('en-US')} joins/s${ov.source ? ` (${ov.source})` : ''}. Open-loop offered load; medians of the rounds [bootstrap 95% interval].`, ''];
  out.push(`| offered (× ${what}) | server | offered joins/s | goodput (200/s) | goodput ÷ ${what} | p99 of admitted, ms | refused | dropped with a closed connection | unanswered | server CPU µs per answer | event-loop delay p99 / max, ms | other work on the server's core, ms | load generator's loop delay max, ms |`, '|---|---|---|---|---|---|---|---|---|---|---|---|---|');
  for (const row of overloadRows(ov)) {
    out.push(`| ${row.factor}× | ${row.server} | ${fmt(row.offered)} | ${fmt(row.goodput)} | ${fmt(row.goodput / ov.capacity)} ${ci([row.goodputCI[0] / ov.capacity, row.goodputCI[1] / ov.capacity])} | ${fmt(row.p99)} ${row.p99CI ? ci(row.p99CI) : ''} | ${fmt(row.refused)} | ${fmt(row.dropped)} | ${fmt(row.unanswered)} | ${fmt(row.cpuPerAnswer)} | ${fmt(row.loopP99)} / ${fmt(row.loopMax)} | ${fmt(row.coreOther)} | ${fmt(row.genLoopMax)} |`);
  }
  return out;
}

interface OverloadRow {
  factor: number;
  server: string;
  offered: number;
  goodput: number;
  goodputCI: [number, number];
  p99: number;
  /** null when some round admitted no join (no p99 to resample). */
  p99CI: [number, number] | null;
  refused: number;
  dropped: number;
  unanswered: number;
  cpuPerAnswer: number;
  loopP99: number;
  loopMax: number;
  /** CPU time others took on the server's core during a point (NaN unpinned). */
  coreOther: number;
  /** The load generator's own worst event-loop delay: large, and the latency is the generator's, not the server's. */
  genLoopMax: number;
}

export function overloadRows(ov: { points: OverloadPoint[] }): OverloadRow[] {
  const rows: OverloadRow[] = [];
  const factors = [...new Set(ov.points.map((p) => p.factor))].sort((a, b) => a - b);
  for (const factor of factors) {
    for (const server of [...new Set(ov.points.map((p) => p.server))]) {
      const ps = ov.points.filter((p) => p.factor === factor && p.server === server);
      if (!ps.length) continue;
      const refused = ps.map((p) => Object.entries(p.statuses).reduce((a, [k, v]) => a + (k === '200' ? 0 : v), 0));
      const g = estimate(ps.map((p) => p.goodputPerSec));
      const p99s = ps.flatMap((p) => (p.p99Ms === null ? [] : [p.p99Ms]));
      const q = p99s.length === ps.length ? estimate(p99s) : null;
      rows.push({
        factor,
        server,
        offered: median(ps.map((p) => p.offeredPerSec)),
        goodput: median(ps.map((p) => p.goodputPerSec)),
        goodputCI: [g.lo, g.hi],
        p99: median(ps.map((p) => p.p99Ms ?? Number.POSITIVE_INFINITY)),
        p99CI: q ? [q.lo, q.hi] : null,
        refused: median(refused),
        dropped: median(ps.map((p) => p.dropped ?? 0)),
        unanswered: median(ps.map((p) => p.unanswered)),
        // older results (before these were measured) read NaN, shown as such
        cpuPerAnswer: median(ps.map((p) => p.cpuMicrosPerAnswer ?? NaN)),
        loopP99: median(ps.map((p) => p.loopP99Ms ?? NaN)),
        loopMax: median(ps.map((p) => p.loopMaxMs ?? NaN)),
        coreOther: median(ps.map((p) => p.coreOtherMs ?? NaN)),
        genLoopMax: median(ps.map((p) => p.gen?.loopMaxMs ?? NaN)),
      });
    }
  }
  return rows;
}

/** Two panels: goodput ÷ capacity and p99 of admitted joins, against offered load (log x), one line per server. */
export function overloadSvg(ov: { capacity: number; points: OverloadPoint[]; definition?: OverloadSeries['definition'] }): string {
  const what = ov.definition === 'budget' ? 'join budget' : 'capacity';
  const rows = overloadRows(ov);
  const servers = [...new Set(rows.map((r) => r.server))];
  const colors = ['#c0392b', '#2471a3', '#7d3c98'];
  const W = 360;
  const H = 240;
  const pad = { l: 56, r: 12, t: 28, b: 40 };
  const factors = [...new Set(rows.map((r) => r.factor))];
  const fx = (f: number) => pad.l + ((Math.log(f) - Math.log(Math.min(...factors))) / (Math.log(Math.max(...factors)) - Math.log(Math.min(...factors)) || 1)) * (W - pad.l - pad.r);
  const panel = (ox: number, title: string, y: (r: OverloadRow) => number, yMax: number, yTicks: number[], yLabel: (v: number) => string, yPos: (v: number) => number) => {
    const g: string[] = [`<g transform="translate(${ox},0)">`, `<text x="${W / 2}" y="16" text-anchor="middle" font-size="13">${title}</text>`];
    g.push(`<line x1="${pad.l}" y1="${H - pad.b}" x2="${W - pad.r}" y2="${H - pad.b}" stroke="#444"/><line x1="${pad.l}" y1="${pad.t}" x2="${pad.l}" y2="${H - pad.b}" stroke="#444"/>`);
    for (const f of factors) g.push(`<text x="${fx(f)}" y="${H - pad.b + 14}" text-anchor="middle" font-size="10">${f}×</text>`);
    g.push(`<text x="${(W + pad.l) / 2}" y="${H - 6}" text-anchor="middle" font-size="11">offered load (× ${what})</text>`);
    for (const v of yTicks) g.push(`<text x="${pad.l - 4}" y="${yPos(v) + 3}" text-anchor="end" font-size="10">${yLabel(v)}</text><line x1="${pad.l}" y1="${yPos(v)}" x2="${W - pad.r}" y2="${yPos(v)}" stroke="#ddd"/>`);
    servers.forEach((s, i) => {
      const pts = rows.filter((r) => r.server === s).map((r) => `${fx(r.factor).toFixed(1)},${yPos(Math.min(yMax, y(r))).toFixed(1)}`);
      g.push(`<polyline fill="none" stroke="${colors[i % colors.length]}" stroke-width="2" points="${pts.join(' ')}"/>`);
      for (const p of pts) g.push(`<circle cx="${p.split(',')[0]}" cy="${p.split(',')[1]}" r="3" fill="${colors[i % colors.length]}"/>`);
    });
    g.push('</g>');
    return g.join('');
  };
  const gMax = Math.max(1.2, ...rows.map((r) => r.goodput / ov.capacity));
  const linY = (v: number) => H - pad.b - (v / gMax) * (H - pad.t - pad.b);
  const gTicks = [0, 0.5, 0.9, 1, Math.round(gMax * 10) / 10].filter((v, i, a) => a.indexOf(v) === i && v <= gMax);
  const lo = 1;
  const hi = 10_000;
  const logY = (v: number) => H - pad.b - ((Math.log10(Math.max(lo, v)) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo))) * (H - pad.t - pad.b);
  const legend = servers.map((s, i) => `<rect x="${20 + i * 220}" y="${H + 8}" width="12" height="4" fill="${colors[i % colors.length]}"/><text x="${36 + i * 220}" y="${H + 14}" font-size="11">${s === 'stampede' ? 'Stampede, admission on' : s === 'bare-http' ? 'bare node:http, no admission' : s}</text>`);
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${2 * W}" height="${H + 24}" font-family="sans-serif">`,
    '<rect width="100%" height="100%" fill="#fff"/>',
    panel(0, `goodput ÷ ${what} (200 answers/s)`, (r) => r.goodput / ov.capacity, gMax, gTicks, (v) => v.toFixed(1), linY),
    panel(W, 'p99 of admitted joins, ms (log)', (r) => r.p99, hi, [1, 10, 100, 1000, 10000], (v) => String(v), logY),
    ...legend,
    '</svg>',
    '',
  ].join('\n');
}
