import { escapeXml as esc, type Chart } from './charts.js';
import { localClock, runFacts, type Report } from './report.js';

function headline(r: Report): [string, string][] {
  const clock = (t: string | null): string => (t === null ? '—' : localClock(Date.parse(t), r.timeZone));
  const met = r.expectations.filter((e) => e.pass).length;
  return [
    ['scheduled', clock(r.scheduledAt)],
    ['on air', `${clock(r.liveAt)}${r.startDelayMinutes !== null ? ` (${r.startDelayMinutes} min late)` : ''}`],
    ['peak', `${r.peakListeners.toLocaleString('en-US')} at ${clock(r.peakAt)}`],
    ['facts met', `${met}/${r.expectations.length} (mean distance ${r.meanError})`],
  ];
}

const STYLE = `
  :root { color-scheme: light; }
  body { font: 15px/1.45 system-ui, sans-serif; margin: 0 auto; max-width: 60rem; padding: 1rem; color: #111; }
  h1 { font-size: 1.5rem; margin: .2rem 0 .6rem; }
  h2 { font-size: 1.15rem; margin-top: 2rem; border-bottom: 1px solid #ddd; padding-bottom: .2rem; }
  dl.meta { display: grid; grid-template-columns: max-content 1fr; gap: .15rem 1rem; margin: 0 0 1rem; font-size: .9rem; }
  dl.meta dt { color: #555; } dl.meta dd { margin: 0; overflow-wrap: anywhere; }
  .headline { display: grid; grid-template-columns: repeat(auto-fit, minmax(10rem, 1fr)); gap: .6rem; }
  .headline div { border: 1px solid #ddd; border-radius: 8px; padding: .5rem .7rem; }
  .headline b { display: block; font-size: 1.25rem; font-variant-numeric: tabular-nums; }
  figure { margin: 1.2rem 0; } figcaption { font-weight: 600; margin-bottom: .3rem; }
  /* a chart keeps a readable size: on a phone it scrolls sideways inside its own box, the page does not */
  .chart { overflow-x: auto; } .chart svg { width: 100%; min-width: 540px; max-width: 880px; height: auto; display: block; }
  .scroll { overflow-x: auto; }
  table { border-collapse: collapse; font-size: .88rem; } th, td { border-bottom: 1px solid #e5e5e5; padding: .25rem .5rem; text-align: left; vertical-align: top; }
  td.num { text-align: right; font-variant-numeric: tabular-nums; }
  .pass { color: #1b6e2d; font-weight: 600; } .fail { color: #b00020; font-weight: 600; }
`;

/** report.html: one self-contained file (inline SVG, inline CSS, no script, no network). */
export function renderHtml(r: Report, charts: { chart: Chart; svg: string }[]): string {
  const clock = (t: string | null): string => (t === null ? '—' : localClock(Date.parse(t), r.timeZone));
  const pct = (x: number | null): string => (x === null ? '—' : `${(x * 100).toFixed(1)}%`);
  const n = (x: number): string => Math.round(x).toLocaleString('en-US');
  const out: string[] = [];
  out.push('<!doctype html>', '<html lang="en">', '<head>', '<meta charset="utf-8">', '<meta name="viewport" content="width=device-width, initial-scale=1">');
  out.push(`<title>Stampede report — ${esc(r.scenario)}</title>`, `<style>${STYLE}</style>`, '</head>', '<body>');
  out.push(`<h1>Replay: ${esc(r.scenario)}</h1>`);
  out.push('<dl class="meta">', ...runFacts(r).map(([k, v]) => `<dt>${esc(k)}</dt><dd>${esc(v)}</dd>`), `<dt>account</dt><dd>${esc(r.account)}</dd>`, '</dl>');
  out.push('<div class="headline">', ...headline(r).map(([k, v]) => `<div>${esc(k)}<b>${esc(v)}</b></div>`), '</div>');
  out.push('<h2>Charts</h2>');
  for (const { chart, svg } of charts) out.push(`<figure id="${chart.id}"><figcaption>${esc(chart.title)}</figcaption><div class="chart" tabindex="0">${svg}</div></figure>`);
  out.push('<h2>Facts</h2>', '<div class="scroll"><table><thead><tr><th>fact</th><th>expected</th><th>replay</th><th></th><th>source</th></tr></thead><tbody>');
  for (const e of r.expectations) out.push(`<tr><td>${esc(e.name)}</td><td>${esc(e.expected)}</td><td>${esc(e.actual)}</td><td class="${e.pass ? 'pass' : 'fail'}">${e.pass ? 'pass' : 'fail'}</td><td>${esc(e.source)}</td></tr>`);
  out.push('</tbody></table></div>');
  out.push('<h2>Events</h2>', '<div class="scroll"><table><thead><tr><th>time</th><th>event</th></tr></thead><tbody>');
  for (const e of r.events) out.push(`<tr><td>${clock(e.t)}</td><td>${esc(e.text)}</td></tr>`);
  out.push('</tbody></table></div>');
  out.push('<h2>Timeline (every 5 simulated minutes)</h2>', '<div class="scroll"><table><thead><tr><th>time</th><th>phase</th><th>listeners</th><th>real</th><th>availability</th><th>real clients</th><th>offered/s</th><th>admitted/s</th><th>attack/s</th><th>p99 ms</th></tr></thead><tbody>');
  for (const s of r.series) {
    if (new Date(s.t).getUTCMinutes() % 5 !== 0) continue;
    out.push(`<tr><td>${clock(s.t)}</td><td>${esc(s.phase)}</td><td class="num">${n(s.listeners)}</td><td class="num">${s.realListeners}</td><td class="num">${pct(s.availability)}</td><td class="num">${pct(s.realAvailability)}</td><td class="num">${n(s.offered)}</td><td class="num">${n(s.admitted)}</td><td class="num">${n(s.attack)}</td><td class="num">${n(s.latencyP99Ms)}</td></tr>`);
  }
  out.push('</tbody></table></div>', '</body>', '</html>', '');
  return out.join('\n');
}

export { headline as reportHeadline };
