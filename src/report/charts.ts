import type { TopLevelSpec } from 'vega-lite';
import type { FactTarget, Report } from './report.js';

/**
 * The report's charts as Vega-Lite specs, rendered to SVG by Vega in Node (no browser, no canvas).
 * Times are drawn as the event's local clock: each instant is shifted to "the same wall-clock
 * reading in UTC" and the specs use UTC scales, so 20:42 ET reads 20:42 wherever the report is built.
 */

export interface Chart {
  /** File name stem and HTML id, e.g. "listeners". */
  id: string;
  title: string;
  /** One sentence for readers who cannot see the chart (also the SVG's aria description). */
  description: string;
  spec: TopLevelSpec;
}

const WIDTH = 600;
const HEIGHT = 210;
export const COLORS = { model: '#1f6fb4', real: '#e3711a', attack: '#c62828', admitted: '#2e7d32', offered: '#5c6bc0', fact: '#2e7d32', event: '#757575' };
/** Distinct colours for overlaid runs (Tableau 10, which reads on white and in print). */
const RUN_COLORS = ['#4e79a7', '#f28e2b', '#e15759', '#76b7b2', '#59a14f', '#edc948', '#b07aa1', '#ff9da7', '#9c755f', '#bab0ac'];

/** The wall-clock reading of `iso` in `timeZone`, as if it were UTC (see the module comment). */
export function localMs(iso: string, timeZone: string): number {
  let f = FORMATS.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', { timeZone, hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit' });
    FORMATS.set(timeZone, f);
  }
  const parts = f.formatToParts(new Date(iso));
  const get = (type: string): number => Number(parts.find((p) => p.type === type)?.value ?? 0);
  return Date.UTC(get('year'), get('month') - 1, get('day'), get('hour'), get('minute'), get('second'));
}
/** Formatters are costly to build and immutable: one per time zone. */
const FORMATS = new Map<string, Intl.DateTimeFormat>();

/** A short label for an event marker; the full text stays in the events table. */
export function shortEventLabel(text: string): string {
  if (text === 'host started') return 'on air';
  if (text === 'host ended') return 'ended';
  if (text.startsWith('join path ')) return text.slice('join path '.length);
  if (text.startsWith('mitigation: ')) return `mitigation: ${text.slice('mitigation: '.length).split(' ').slice(0, 3).join(' ')}…`;
  return text;
}

interface Marker {
  x: number;
  label: string;
}

/** The night's events as chart markers: the scenario's events, the scheduled start and the first million. */
export function eventMarkers(r: Report): Marker[] {
  const tz = r.timeZone;
  const raw: { t: string; label: string }[] = [{ t: r.scheduledAt, label: 'scheduled start' }, ...r.events.map((e) => ({ t: e.t, label: shortEventLabel(e.text) }))];
  const million = r.series.find((s) => s.listeners >= 1_000_000);
  if (million) raw.push({ t: million.t, label: '1M listeners' });
  raw.sort((a, b) => Date.parse(a.t) - Date.parse(b.t));
  // markers within two minutes of each other share one line, so labels do not print over each other
  const out: Marker[] = [];
  for (const e of raw) {
    const x = localMs(e.t, tz);
    const prev = out[out.length - 1];
    if (prev && x - prev.x < 120_000) {
      if (!prev.label.split(' · ').includes(e.label)) prev.label += ` · ${e.label}`;
    } else out.push({ x, label: e.label });
  }
  return out;
}

const xEnc = (title: string) => ({ field: 'x', type: 'temporal' as const, scale: { type: 'utc' as const }, axis: { format: '%H:%M', title, labelOverlap: true, tickCount: 8 } });

function eventLayers(markers: Marker[]): object[] {
  return [
    { data: { values: markers }, mark: { type: 'rule', color: COLORS.event, strokeDash: [3, 3], strokeWidth: 1 }, encoding: { x: { field: 'x', type: 'temporal' } } },
    {
      data: { values: markers },
      mark: { type: 'text', angle: 270, align: 'right', baseline: 'bottom', dx: -4, dy: -2, fontSize: 9, color: '#444' },
      encoding: { x: { field: 'x', type: 'temporal' }, y: { value: 0 }, text: { field: 'label' } },
    },
  ];
}

/** Powers of ten as a log axis's ticks: 2, 3 and 4k crowd each other out on a small chart. */
export function decades(values: number[]): number[] {
  const pos = values.filter((v) => v > 0);
  if (pos.length === 0) return [1];
  const lo = Math.floor(Math.log10(Math.min(...pos)));
  const hi = Math.ceil(Math.log10(Math.max(...pos)));
  return Array.from({ length: hi - lo + 1 }, (_, i) => 10 ** (lo + i));
}

function tzLabel(r: Report): string {
  const name = new Intl.DateTimeFormat('en-US', { timeZone: r.timeZone, timeZoneName: 'short' }).formatToParts(new Date(r.scheduledAt)).find((p) => p.type === 'timeZoneName')?.value;
  return `time (${name ?? r.timeZone})`;
}

function targets<K extends FactTarget['kind']>(r: Report, kind: K): Extract<FactTarget, { kind: K }>[] {
  return r.expectations.flatMap((e) => (e.target?.kind === kind ? [e.target as Extract<FactTarget, { kind: K }>] : []));
}

function base(id: string, description: string): Partial<TopLevelSpec> & { $schema: string } {
  return { $schema: 'https://vega.github.io/schema/vega-lite/v6.json', description, width: WIDTH, height: HEIGHT, config: { font: 'system-ui, sans-serif', view: { stroke: '#ddd' }, axis: { labelFontSize: 11, titleFontSize: 11 }, legend: { orient: 'top', labelFontSize: 11, title: null } }, ...({ usermeta: { id } } as object) };
}

/** Bands for "on air per the reports" on a time axis. */
function liveAtBands(r: Report): object[] {
  const tz = r.timeZone;
  const bands = targets(r, 'liveAt').map((t) => ({ x: localMs(t.from, tz), x2: localMs(t.to, tz), label: 'fact: on air' }));
  if (bands.length === 0) return [];
  return [
    { data: { values: bands }, mark: { type: 'rect', color: COLORS.fact, opacity: 0.12 }, encoding: { x: { field: 'x', type: 'temporal' }, x2: { field: 'x2' } } },
    { data: { values: bands }, mark: { type: 'text', align: 'left', baseline: 'bottom', dx: 2, dy: -2, fontSize: 9, color: COLORS.fact }, encoding: { x: { field: 'x', type: 'temporal' }, y: { value: HEIGHT }, text: { field: 'label' } } },
  ];
}

function listenersChart(r: Report): Chart {
  const tz = r.timeZone;
  const rows = r.series.map((s) => ({ x: localMs(s.t, tz), listeners: s.listeners, real: s.realListeners }));
  const points = targets(r, 'listenersAt').map((t) => ({ x: localMs(t.at, tz), y: t.min, label: `fact: ≥ ${(t.min / 1e6).toFixed(1)}M` }));
  const peaks = targets(r, 'peakListeners').map((t) => ({ y: t.min, y2: t.max, label: 'fact: peak range' }));
  const description = `Modelled listeners (left axis) and real WebSocket clients (right axis) over the night; peak ${r.peakListeners.toLocaleString('en-US')}.`;
  const modelled: object[] = [
    ...(peaks.length === 0 ? [] : [
      { data: { values: peaks }, mark: { type: 'rect', color: COLORS.fact, opacity: 0.12 }, encoding: { y: { field: 'y', type: 'quantitative' }, y2: { field: 'y2' } } },
      { data: { values: peaks }, mark: { type: 'text', align: 'right', baseline: 'top', dx: -4, dy: 2, fontSize: 9, color: COLORS.fact }, encoding: { x: { value: WIDTH }, y: { field: 'y2', type: 'quantitative' }, text: { field: 'label' } } },
    ]),
    { data: { values: rows }, mark: { type: 'line', color: COLORS.model, strokeWidth: 2 }, encoding: { x: xEnc(tzLabel(r)), y: { field: 'listeners', type: 'quantitative', axis: { title: 'modelled listeners', titleColor: COLORS.model, format: '~s' } } } },
    ...(points.length
      ? [
          { data: { values: points }, mark: { type: 'point', shape: 'triangle-up', filled: true, size: 90, color: COLORS.fact }, encoding: { x: { field: 'x', type: 'temporal' }, y: { field: 'y', type: 'quantitative' } } },
          { data: { values: points }, mark: { type: 'text', align: 'left', dx: 6, dy: 8, fontSize: 9, color: COLORS.fact }, encoding: { x: { field: 'x', type: 'temporal' }, y: { field: 'y', type: 'quantitative' }, text: { field: 'label' } } },
        ]
      : []),
  ];
  const own = [...liveAtBands(r), ...modelled, ...eventLayers(eventMarkers(r))];
  // a model-only run has no real clients: no second axis to read zeros from
  if (!rows.some((row) => row.real > 0)) {
    return { id: 'listeners', title: 'Listeners: the modelled crowd', description, spec: { ...base('listeners', description), layer: own } as TopLevelSpec };
  }
  return {
    id: 'listeners',
    title: 'Listeners: the modelled crowd and the real clients',
    description,
    spec: {
      ...base('listeners', description),
      layer: [
        { layer: own },
        { data: { values: rows }, mark: { type: 'line', color: COLORS.real, strokeWidth: 1.5, interpolate: 'step-after' }, encoding: { x: { field: 'x', type: 'temporal' }, y: { field: 'real', type: 'quantitative', axis: { title: 'real clients', titleColor: COLORS.real, orient: 'right', format: '~s' } } } },
      ],
      resolve: { scale: { y: 'independent' } },
    } as TopLevelSpec,
  };
}

/** A legend-bearing colour encoding over fixed series names. */
function seriesColor(domain: string[], range: string[]): object {
  return { field: 'series', type: 'nominal', scale: { domain, range }, legend: { orient: 'top', title: null } };
}

function availabilityChart(r: Report): Chart {
  const tz = r.timeZone;
  const rows = r.series.flatMap((s) => {
    const x = localMs(s.t, tz);
    const out = [{ x, series: 'model', value: s.availability }];
    if (s.realAvailability !== null && s.realAvailability !== undefined) out.push({ x, series: 'real clients', value: s.realAvailability });
    return out;
  });
  const bands = targets(r, 'failureShare').map((t) => ({ x: localMs(t.from, tz), x2: localMs(t.to, tz), y: 0, y2: 1 - t.min, label: `fact: > ${Math.round(t.min * 100)}% fail` }));
  const description = 'Share of join attempts that succeed, per simulated minute: the model and the real clients.';
  return {
    id: 'availability',
    title: 'Join availability: the model and the real clients',
    description,
    spec: {
      ...base('availability', description),
      layer: [
        ...(bands.length === 0 ? [] : [
          { data: { values: bands }, mark: { type: 'rect', color: COLORS.attack, opacity: 0.1 }, encoding: { x: { field: 'x', type: 'temporal' }, x2: { field: 'x2' }, y: { field: 'y', type: 'quantitative' }, y2: { field: 'y2' } } },
          { data: { values: bands }, mark: { type: 'text', align: 'left', baseline: 'bottom', dx: 2, dy: -2, fontSize: 9, color: COLORS.attack }, encoding: { x: { field: 'x', type: 'temporal' }, y: { field: 'y2', type: 'quantitative' }, text: { field: 'label' } } },
        ]),
        { data: { values: rows }, mark: { type: 'line', strokeWidth: 1.8 }, encoding: { x: xEnc(tzLabel(r)), y: { field: 'value', type: 'quantitative', scale: { domain: [0, 1] }, axis: { title: 'joins that succeed', format: '.0%' } }, color: seriesColor(['model', 'real clients'], [COLORS.model, COLORS.real]) } },
        ...eventLayers(eventMarkers(r)),
      ],
    } as TopLevelSpec,
  };
}

function trafficChart(r: Report): Chart {
  const tz = r.timeZone;
  const names = { offered: 'offered', admitted: 'admitted', attack: 'attack' } as const;
  const rows = r.series.flatMap((s) => {
    const x = localMs(s.t, tz);
    return (Object.keys(names) as (keyof typeof names)[]).filter((k) => s[k] > 0).map((k) => ({ x, series: names[k], value: s[k] }));
  });
  const peak = Math.max(0, ...r.series.map((s) => s.offered));
  const description = `Requests per second offered to the join path, joins admitted, and attack traffic that got through (log scale); offered load peaks at ${Math.round(peak).toLocaleString('en-US')}/s.`;
  return {
    id: 'traffic',
    title: 'Join path: offered vs admitted vs attack (requests/s, log scale)',
    description,
    spec: {
      ...base('traffic', description),
      layer: [
        { data: { values: rows }, mark: { type: 'line', strokeWidth: 1.8 }, encoding: { x: xEnc(tzLabel(r)), y: { field: 'value', type: 'quantitative', scale: { type: 'log' }, axis: { title: 'per second', format: '~s', values: decades(rows.map((x) => x.value)) } }, color: seriesColor(['offered', 'admitted', 'attack'], [COLORS.offered, COLORS.admitted, COLORS.attack]) } },
        ...eventLayers(eventMarkers(r)),
      ],
    } as TopLevelSpec,
  };
}

function latencyChart(r: Report): Chart {
  const tz = r.timeZone;
  const rows = r.series.flatMap((s) => {
    const x = localMs(s.t, tz);
    const out = [{ x, series: 'p99', value: Math.max(1, s.latencyP99Ms) }];
    if (typeof s.latencyP50Ms === 'number') out.push({ x, series: 'p50', value: Math.max(1, s.latencyP50Ms) });
    return out;
  });
  const description = 'Modelled join latency per simulated minute, median and 99th percentile (log scale, capped at the client timeout).';
  return {
    id: 'latency',
    title: 'Join latency, p50 and p99 (ms, log scale)',
    description,
    spec: {
      ...base('latency', description),
      layer: [
        { data: { values: rows }, mark: { type: 'line', strokeWidth: 1.8 }, encoding: { x: xEnc(tzLabel(r)), y: { field: 'value', type: 'quantitative', scale: { type: 'log' }, axis: { title: 'milliseconds', format: '~s', values: decades(rows.map((x) => x.value)) } }, color: seriesColor(['p50', 'p99'], [COLORS.admitted, COLORS.attack]) } },
        ...eventLayers(eventMarkers(r)),
      ],
    } as TopLevelSpec,
  };
}

/** Every chart of one run's report. */
export function reportCharts(r: Report): Chart[] {
  return [listenersChart(r), availabilityChart(r), trafficChart(r), latencyChart(r)];
}

/** A run as it is named in an overlay: its label and the report. */
export interface LabelledRun {
  label: string;
  report: Report;
}

/** Charts that overlay several runs, coloured by run, each run's "on air" time marked. */
export function overlayCharts(runs: LabelledRun[]): Chart[] {
  const labels = runs.map((r) => r.label);
  const color = { field: 'run', type: 'nominal', scale: { domain: labels, range: RUN_COLORS }, legend: { orient: 'top', title: null, columns: 1, labelLimit: 600 } };
  const tz = runs[0]?.report.timeZone ?? 'UTC';
  const onAir = runs.flatMap((r) => (r.report.liveAt ? [{ x: localMs(r.report.liveAt, tz), run: r.label }] : []));
  const onAirLayer = { data: { values: onAir }, mark: { type: 'rule', strokeDash: [4, 3], strokeWidth: 1.2 }, encoding: { x: { field: 'x', type: 'temporal' }, color } };
  const line = (field: 'listeners' | 'availability' | 'offered' | 'admitted'): object[] => runs.flatMap((r) => r.report.series.filter((s) => field !== 'offered' || s.offered > 0).map((s) => ({ x: localMs(s.t, tz), run: r.label, value: s[field] })));
  const facts = runs[0] ? liveAtBands(runs[0].report) : [];
  const mk = (id: string, title: string, description: string, field: 'listeners' | 'availability' | 'offered', y: object): Chart => ({
    id,
    title,
    description,
    spec: {
      ...base(id, description),
      layer: [...facts, { data: { values: line(field) }, mark: { type: 'line', strokeWidth: 1.8 }, encoding: { x: xEnc(runs[0] ? tzLabel(runs[0].report) : 'time (UTC)'), y, color } }, onAirLayer],
    } as TopLevelSpec,
  });
  return [
    mk('compare-listeners', 'Listeners, run by run (dashed: on air)', 'Modelled listeners of each run over the night; dashed lines mark when each run went on air.', 'listeners', { field: 'value', type: 'quantitative', axis: { title: 'modelled listeners', format: '~s' } }),
    mk('compare-availability', 'Join availability, run by run', 'Share of join attempts that succeed in each run.', 'availability', { field: 'value', type: 'quantitative', scale: { domain: [0, 1] }, axis: { title: 'joins that succeed', format: '.0%' } }),
    mk('compare-offered', 'Offered load on the join path, run by run (log scale)', 'Requests per second offered to the join path in each run, log scale.', 'offered', { field: 'value', type: 'quantitative', scale: { type: 'log' }, axis: { title: 'requests/s', format: '~s', values: decades(runs.flatMap((r) => r.report.series.map((s) => s.offered))) } }),
  ];
}

/**
 * Renders a chart to a standalone SVG string. Element ids are prefixed with the chart's id so several
 * SVGs can sit inline in one HTML page without their clip paths clashing.
 */
export async function renderSvg(chart: Chart): Promise<string> {
  // loaded on first use: every CLI command would otherwise pay for Vega at start-up
  const [vega, { compile }] = await Promise.all([import('vega'), import('vega-lite')]);
  const view = new vega.View(vega.parse(compile(chart.spec).spec), { renderer: 'none' });
  try {
    const svg = await view.toSVG();
    const prefix = `${chart.id}-`;
    return svg
      .replace(/\bid="([^"]+)"/g, (_m, id: string) => `id="${prefix}${id}"`)
      .replace(/url\(#([^)]+)\)/g, (_m, id: string) => `url(#${prefix}${id})`)
      .replace('<svg ', `<svg role="img" aria-label="${escapeXml(chart.title)}: ${escapeXml(chart.description)}" `);
  } finally {
    view.finalize();
  }
}

export function escapeXml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}
