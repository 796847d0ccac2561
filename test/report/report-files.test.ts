import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { manualClock } from '../../src/clock.js';
import { buildReport, renderMarkdown, reportCharts, writeReport, type Report, type RunMeta } from '../../src/report/index.js';
import { loadScenario, runReplay, type ReplayResult } from '../../src/sim/index.js';
import { TOOL_VERSION } from '../../src/version.js';
import { useTempDir } from '../helpers/tmp.js';

const DEFAULT = 'scenarios/x-spaces-2024-08-12.yaml';

describe('report files: json, md, a self-contained html and the SVG charts', () => {
  const dir = useTempDir('stampede-report-');
  let report: Report;
  let result: ReplayResult;
  const meta: RunMeta = {
    scenarioFile: DEFAULT,
    scenarioSha256: 'ab'.repeat(32),
    overrides: ['assumptions.demand.noise=0.1'],
    seed: 7,
    speed: 'max',
    tool: `stampede ${TOOL_VERSION}`,
    startedAt: '2026-01-01T00:00:00.000Z',
    finishedAt: '2026-01-01T00:00:01.000Z',
  };
  beforeAll(async () => {
    const scenario = await loadScenario(DEFAULT, ['assumptions.demand.noise=0.1']);
    result = await runReplay({ scenario, seed: 7, speed: 'max', clock: manualClock(0) });
    report = buildReport(result, meta);
  });

  it('says how far behind its schedule a paced replay ran: in the run facts always, in the summary from a second behind', () => {
    const late = buildReport(result, { ...meta, speed: 1200, schedule: { steps: 11_100, lateSteps: 412, maxBehindMs: 3_400 } });
    expect(late.summary).toContain('  behind schedule: 412 of 11,100 steps late, at most 3.4 s behind');
    expect(renderMarkdown(late)).toContain('412 of 11,100 steps late, at most 3.4 s behind');
    const onTime = buildReport(result, { ...meta, speed: 1200, schedule: { steps: 11_100, lateSteps: 3, maxBehindMs: 40 } });
    expect(onTime.summary).not.toContain('behind schedule');
    expect(renderMarkdown(onTime)).toContain('3 of 11,100 steps late, at most 0.0 s behind');
  });

  it('writes the charts beside report.md, which links each of them', async () => {
    const w = await writeReport(dir(), report);
    const files = (await readdir(dir())).sort();
    expect(files).toEqual(['availability.svg', 'latency.svg', 'listeners.svg', 'report.html', 'report.json', 'report.md', 'traffic.svg']);
    const md = await readFile(w.mdPath, 'utf8');
    for (const c of reportCharts(report)) {
      expect(md).toContain(`](${c.id}.svg)`);
      const svg = await readFile(join(dir(), `${c.id}.svg`), 'utf8');
      expect(svg.startsWith('<svg')).toBe(true);
      expect(svg).toContain('role="img"');
    }
    // the run's provenance at the top
    expect(md.split('## Charts')[0]).toContain('`assumptions.demand.noise=0.1`');
    expect(md).toContain(`stampede ${TOOL_VERSION}`);
    expect(md).toContain('sha256 abababababab');
  });

  it('report.html holds every chart inline and loads nothing from anywhere', async () => {
    const w = await writeReport(dir(), report);
    const html = await readFile(w.htmlPath, 'utf8');
    expect(html.match(/<svg /g)).toHaveLength(reportCharts(report).length);
    expect(html).not.toMatch(/<script|<link|<img|@import|src=/i);
    // clip-path ids are unique across the inlined charts
    const ids = [...html.matchAll(/\bid="([^"]+)"/g)].map((m) => m[1]);
    expect(new Set(ids).size).toBe(ids.length);
    expect(html).toContain('assumptions.demand.noise=0.1');
    for (const e of report.expectations) expect(html).toContain(e.source.replace(/&/g, '&amp;').replace(/'/g, '&#39;').replace(/"/g, '&quot;'));
  });

  it('draws the facts and the night’s events on the charts', async () => {
    await writeReport(dir(), report);
    const listeners = await readFile(join(dir(), 'listeners.svg'), 'utf8');
    for (const text of ['fact: ≥ 1.0M', 'fact: peak range', 'fact: on air', 'scheduled start', 'on air', '1M listeners', 'mitigation: shed excess joins…', 'ended']) expect(listeners, text).toContain(text);
    const availability = await readFile(join(dir(), 'availability.svg'), 'utf8');
    expect(availability).toContain('fact: &gt; 50% fail');
    // time reads as the event's clock, whatever the machine's time zone
    expect(listeners).toContain('>20:30<');
    expect(listeners).toContain('time (EDT)');
  });

  it('report.json records the run and the facts as numbers', async () => {
    const w = await writeReport(dir(), report);
    const json = JSON.parse(await readFile(w.jsonPath, 'utf8')) as Report;
    expect(json.run).toMatchObject({ scenarioFile: DEFAULT, overrides: ['assumptions.demand.noise=0.1'], seed: 7, speed: 'max', tool: `stampede ${TOOL_VERSION}` });
    expect(json.expectations.map((e) => e.target?.kind)).toEqual(['liveAt', 'listenersAt', 'peakListeners', 'failureShare', undefined]);
    expect(json.series[0]).toHaveProperty('latencyP50Ms');
  });

  it('the version recorded is the package version', async () => {
    const pkg = JSON.parse(await readFile('package.json', 'utf8')) as { version: string };
    expect(TOOL_VERSION).toBe(pkg.version);
  });
});
