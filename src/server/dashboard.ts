import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';

/**
 * The live dashboard served at `/dashboard`: the replay's figures as time series (uPlot, served by
 * Stampede itself from `/assets/`), updated every second from `/api/v1/replay/timeline`, with the
 * night's events as markers and the scenario's facts as points and bands. Each chart is a focusable
 * region: the arrow keys walk its cursor through the samples, Home/End jump to the ends.
 */
export const DASHBOARD_PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Stampede — live dashboard</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/assets/uplot.css">
<style>
  body { font: 15px/1.4 system-ui, sans-serif; margin: 0 auto; max-width: 80rem; padding: .8rem; color: #111; }
  header { display: flex; flex-wrap: wrap; align-items: baseline; gap: .3rem 1.2rem; }
  h1 { font-size: 1.2rem; margin: 0; }
  #clock { font-size: 2rem; font-variant-numeric: tabular-nums; font-weight: 600; }
  .muted { color: #555; }
  #progress { width: 100%; height: .5rem; accent-color: #1f6fb4; }
  .grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(min(100%, 34rem), 1fr)); gap: 1rem; margin-top: .8rem; }
  section.chart { border: 1px solid #ddd; border-radius: 8px; padding: .5rem; min-width: 0; }
  section.chart:focus { outline: 3px solid #1f6fb4; outline-offset: 2px; }
  section.chart h2 { font-size: .95rem; margin: 0 0 .3rem; }
  .readout { font-size: .85rem; color: #333; min-height: 1.2em; font-variant-numeric: tabular-nums; }
  a { color: #1f6fb4; }
  #events { font-size: .85rem; padding-left: 1.2rem; }
  .u-legend { font-size: .8rem; }
</style>
</head>
<body>
<header>
  <h1 id="title">Stampede — live dashboard</h1>
  <span class="muted" id="phase">waiting for a replay…</span>
  <a href="/">listener view →</a>
</header>
<div><span id="clock">–</span> <span class="muted" id="tz"></span></div>
<progress id="progress" max="1" value="0" aria-label="simulated time"></progress>
<div class="grid" id="charts"></div>
<h2 style="font-size:1rem">Events</h2>
<ol id="events"></ol>
<script src="/assets/uplot.js"></script>
<script type="module">
const $ = (id) => document.getElementById(id);
const C = { model: '#1f6fb4', real: '#e3711a', attack: '#c62828', admitted: '#2e7d32', offered: '#5c6bc0', fact: '#2e7d32', event: '#666' };
let meta = null, next = 0, events = [];
const xs = [], cols = {};
const FIELDS = ['listeners', 'real', 'availability', 'realAvailability', 'offered', 'admitted', 'attack', 'p50', 'p99', 'audioP50', 'audioP99'];
for (const f of FIELDS) cols[f] = [];
const fmtN = (n) => n == null ? '–' : n >= 1e6 ? (n / 1e6).toFixed(2) + 'M' : n >= 1e4 ? Math.round(n / 1e3) + 'k' : String(Math.round(n));
const pct = (x) => x == null ? '–' : (x * 100).toFixed(1) + '%';
const ms = (x) => x == null ? '–' : Math.round(x) + ' ms';
function clock(tSec) { return new Date(tSec * 1000).toLocaleTimeString('en-US', { timeZone: meta.timeZone, hour: '2-digit', minute: '2-digit', hourCycle: 'h23' }); }
function shortLabel(text) {
  if (text === 'host started') return 'on air';
  if (text === 'host ended') return 'ended';
  if (text.startsWith('join path ')) return text.slice(10);
  if (text.startsWith('mitigation: ')) return 'mitigation';
  return text;
}
// the chart definitions: series over the shared x, which facts each draws, how its readout reads
const DEFS = [
  { id: 'listeners', title: 'Listeners: modelled (left) and real clients (right)', series: [['listeners', 'modelled', C.model, 'y', fmtN], ['real', 'real clients', C.real, 'real', fmtN]], scales: { real: {} }, axes: [{ scale: 'y', values: (u, v) => v.map(fmtN) }, { scale: 'real', side: 1, grid: { show: false }, values: (u, v) => v.map(fmtN), stroke: C.real }] },
  { id: 'availability', title: 'Join availability: model vs real clients', series: [['availability', 'model', C.model, 'y', pct], ['realAvailability', 'real clients', C.real, 'y', pct]], scales: { y: { range: [0, 1] } }, axes: [{ scale: 'y', values: (u, v) => v.map((x) => Math.round(x * 100) + '%') }] },
  { id: 'traffic', title: 'Join path: offered vs admitted vs attack (/s, log)', series: [['offered', 'offered', C.offered, 'y', fmtN], ['admitted', 'admitted', C.admitted, 'y', fmtN], ['attack', 'attack', C.attack, 'y', fmtN]], scales: { y: { distr: 3 } }, axes: [{ scale: 'y', values: (u, v) => v.map(fmtN) }], positive: true },
  { id: 'latency', title: 'Join latency p50 / p99 (ms, log)', series: [['p50', 'p50', C.admitted, 'y', ms], ['p99', 'p99', C.attack, 'y', ms]], scales: { y: { distr: 3 } }, axes: [{ scale: 'y', values: (u, v) => v.map(fmtN) }], positive: true },
  { id: 'audio', title: 'Audio delay at the real clients (ms)', series: [['audioP50', 'p50', C.admitted, 'y', ms], ['audioP99', 'p99', C.attack, 'y', ms]], scales: {}, axes: [{ scale: 'y', values: (u, v) => v.map(fmtN) }] },
];
const charts = [];
function factsFor(id) {
  return meta.facts.filter((f) => f.kind === 'liveAt' || (id === 'listeners' && (f.kind === 'listenersAt' || f.kind === 'peakListeners')) || (id === 'availability' && f.kind === 'failureShare'));
}
// draws event markers and facts on the chart's canvas, and counts them on the element for tests and readers
function overlay(def) {
  return { hooks: { draw: [(u) => {
    const ctx = u.ctx, { left, top, width, height } = u.bbox, dpr = devicePixelRatio || 1;
    const X = (tMs) => u.valToPos(tMs / 1000, 'x', true);
    let facts = 0, markers = 0;
    ctx.save();
    ctx.beginPath(); ctx.rect(left, top, width, height); ctx.clip();
    for (const f of factsFor(def.id)) {
      ctx.fillStyle = f.kind === 'failureShare' ? 'rgba(198,40,40,.12)' : 'rgba(46,125,50,.13)';
      if (f.kind === 'liveAt') { ctx.fillRect(X(f.from), top, X(f.to) - X(f.from), height); facts++; }
      else if (f.kind === 'peakListeners') { const y1 = u.valToPos(f.max, 'y', true), y2 = u.valToPos(f.min, 'y', true); ctx.fillRect(left, y1, width, y2 - y1); facts++; }
      else if (f.kind === 'failureShare') { const y = u.valToPos(1 - f.min, 'y', true), y0 = u.valToPos(0, 'y', true); ctx.fillRect(X(f.from), y, X(f.to) - X(f.from), y0 - y); facts++; }
      else if (f.kind === 'listenersAt') {
        const x = X(f.at), y = u.valToPos(f.min, 'y', true), s = 7 * dpr;
        ctx.fillStyle = C.fact; ctx.beginPath(); ctx.moveTo(x, y - s); ctx.lineTo(x + s, y + s); ctx.lineTo(x - s, y + s); ctx.closePath(); ctx.fill(); facts++;
      }
    }
    ctx.setLineDash([4 * dpr, 4 * dpr]); ctx.strokeStyle = C.event; ctx.fillStyle = '#333'; ctx.lineWidth = dpr;
    ctx.font = (10 * dpr) + 'px system-ui, sans-serif'; ctx.textBaseline = 'top'; ctx.textAlign = 'left'; // uPlot leaves its axes' alignment set
    let lastX = -1e9;
    for (const e of markerList()) {
      const x = X(e.t);
      if (x < left || x > left + width) continue;
      ctx.beginPath(); ctx.moveTo(x, top); ctx.lineTo(x, top + height); ctx.stroke(); markers++;
      if (x - lastX > 12 * dpr) { ctx.save(); ctx.translate(x - 2 * dpr, top + 4 * dpr); ctx.rotate(Math.PI / 2); ctx.fillText(e.label, 0, 0); ctx.restore(); lastX = x; }
    }
    ctx.restore();
    u.root.dataset.facts = String(facts);
    u.root.dataset.markers = String(markers);
  }] } };
}
function markerList() {
  const out = [{ t: meta.scheduledStart, label: 'scheduled start' }, ...events.map((e) => ({ t: e.t, label: shortLabel(e.text) }))];
  const i = cols.listeners.findIndex((v) => v >= 1e6);
  if (i >= 0) out.push({ t: xs[i] * 1000, label: '1M listeners' });
  return out.sort((a, b) => a.t - b.t);
}
function data(def) {
  return [xs, ...def.series.map(([f]) => def.positive ? cols[f].map((v) => (v > 0 ? v : null)) : cols[f])];
}
function size(el) { return { width: Math.max(260, el.clientWidth - 16), height: Math.min(220, Math.max(150, Math.round(el.clientWidth * 0.4))) }; }
function build() {
  $('title').textContent = meta.scenario;
  $('tz').textContent = meta.timeZone;
  for (const def of DEFS) {
    const sec = document.createElement('section');
    sec.className = 'chart'; sec.id = 'chart-' + def.id; sec.tabIndex = 0;
    sec.setAttribute('role', 'group');
    sec.setAttribute('aria-label', def.title + ' — arrow keys move through time');
    sec.innerHTML = '<h2></h2><div class="plot"></div><div class="readout" aria-live="polite"></div>';
    sec.querySelector('h2').textContent = def.title;
    $('charts').appendChild(sec);
    const opts = {
      ...size(sec),
      tzDate: (ts) => uPlot.tzDate(new Date(ts * 1e3), meta.timeZone),
      scales: { x: { time: true, range: () => [meta.from / 1000, meta.to / 1000] }, ...def.scales },
      series: [{ value: (u, v) => (v == null ? '–' : clock(v)) }, ...def.series.map(([f, label, stroke, scale, fmt]) => ({ label, stroke, scale, width: 2, spanGaps: false, value: (u, v) => fmt(v), ...(label === 'real clients' ? { points: { show: true, size: 4, fill: stroke } } : {}) }))],
      axes: [{ values: (u, v) => v.map((x) => clock(x)) }, ...def.axes.map((a) => ({ size: 50, ...a }))],
      legend: { live: true },
      plugins: [overlay(def)],
    };
    const u = new uPlot(opts, data(def), sec.querySelector('.plot'));
    charts.push({ def, u, sec });
    let idx = -1;
    sec.addEventListener('keydown', (ev) => {
      const n = xs.length; if (!n) return;
      if (ev.key === 'ArrowLeft') idx = Math.max(0, (idx < 0 ? n : idx) - 1);
      else if (ev.key === 'ArrowRight') idx = Math.min(n - 1, idx + 1);
      else if (ev.key === 'Home') idx = 0;
      else if (ev.key === 'End') idx = n - 1;
      else return;
      ev.preventDefault();
      u.setCursor({ left: u.valToPos(xs[idx], 'x'), top: 10 });
      sec.querySelector('.readout').textContent = clock(xs[idx]) + ' — ' + def.series.map(([f, label, , , fmt]) => label + ' ' + fmt(cols[f][idx])).join(', ');
    });
  }
  // a chart follows its card's width (phone rotation, window resize, the grid settling)
  const ro = new ResizeObserver((entries) => { for (const e of entries) { const c = charts.find((x) => x.sec === e.target); if (c) c.u.setSize(size(c.sec)); } });
  for (const c of charts) ro.observe(c.sec);
}
async function poll() {
  try {
    const r = await fetch('/api/v1/replay/timeline?since=' + next);
    if (r.status === 404) { $('phase').textContent = 'no replay running here: start one with  stampede replay'; return; }
    const body = await r.json();
    if (!meta) { meta = body.meta; build(); }
    for (const p of body.points) { xs.push(p.t / 1000); for (const f of FIELDS) cols[f].push(p[f]); }
    next = body.next; events = body.events;
    for (const c of charts) c.sec.dataset.points = String(xs.length);
    const info = body.replay;
    if (xs.length) {
      const t = xs[xs.length - 1];
      $('clock').textContent = clock(t);
      $('progress').value = Math.min(1, (t * 1000 - meta.from) / (meta.to - meta.from));
      $('progress').setAttribute('aria-valuetext', clock(t));
    }
    $('phase').textContent = info ? 'phase: ' + info.phase + (info.running ? '' : ' (replay over)') : '';
    if (body.points.length || !charts[0]) for (const c of charts) c.u.setData(data(c.def));
    $('events').innerHTML = '';
    for (const e of events) { const li = document.createElement('li'); li.textContent = clock(e.t / 1000) + ' ' + e.text; $('events').appendChild(li); }
  } catch (err) { $('phase').textContent = 'lost the server (' + err.message + '), retrying…'; }
}
setInterval(poll, 1000);
poll();
</script>
</body>
</html>
`;

/** uPlot's browser build and stylesheet, served at /assets/ (the machines are offline: no CDN). */
export interface DashboardAssets {
  'uplot.js': Buffer;
  'uplot.css': Buffer;
}

export const ASSET_TYPES: Record<keyof DashboardAssets, string> = {
  'uplot.js': 'text/javascript; charset=utf-8',
  'uplot.css': 'text/css; charset=utf-8',
};

/** Reads the chart library from the installed package once, at server start. */
export async function loadDashboardAssets(): Promise<DashboardAssets> {
  const require = createRequire(import.meta.url);
  const [js, css] = await Promise.all([readFile(require.resolve('uplot/dist/uPlot.iife.min.js')), readFile(require.resolve('uplot/dist/uPlot.min.css'))]);
  return { 'uplot.js': js, 'uplot.css': css };
}
