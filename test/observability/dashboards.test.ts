import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { expressions, type Dashboard, type Panel, type TimeSeriesPanel, type StatPanel } from '../../src/dashboards/builder.js';
import { generateDashboards, generatedFiles } from '../../src/dashboards/generate.js';
import { PAGE, sloRules, TICKET, windowFor } from '../../src/dashboards/rules.js';
import { JOIN_OUTCOMES, ROUTES, SIM_PHASES } from '../../src/metrics/index.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const REGEN = 'regenerate with `npm run dashboards`';

async function committed(): Promise<Dashboard[]> {
  return Promise.all(['stampede-outage.json', 'stampede-server.json'].map(async (f) => JSON.parse(await readFile(`${ROOT}dashboards/${f}`, 'utf8')) as Dashboard));
}

function overlaps(a: Panel['gridPos'], b: Panel['gridPos']): boolean {
  return a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;
}

describe('generated files', () => {
  it('the committed dashboards and rule files are exactly what src/dashboards generates', async () => {
    for (const [rel, text] of generatedFiles()) {
      const onDisk = await readFile(`${ROOT}${rel}`, 'utf8').catch(() => `(missing: ${rel})`);
      expect(onDisk, `${rel} is stale: ${REGEN}`).toBe(text);
    }
  });
});

describe('dashboard structure', async () => {
  const boards = await committed();

  it('has both boards with datasource, job and instance template variables', () => {
    expect(boards.map((b) => b.uid).sort()).toEqual(['stampede-outage', 'stampede-server']);
    for (const b of boards) {
      const vars = b.templating.list.map((v) => v.name);
      expect(vars).toEqual(expect.arrayContaining(['datasource', 'job', 'instance']));
      expect(b.templating.list.find((v) => v.name === 'datasource')?.type).toBe('datasource');
    }
  });

  for (const b of boards) {
    describe(b.uid, () => {
      it('panel ids are unique', () => {
        const ids = b.panels.map((p) => p.id);
        expect(new Set(ids).size).toBe(ids.length);
      });

      it('every panel has a grid position inside 24 columns and none overlap', () => {
        for (const p of b.panels) {
          expect(p.gridPos, p.title).toBeDefined();
          expect(p.gridPos.x).toBeGreaterThanOrEqual(0);
          expect(p.gridPos.w).toBeGreaterThan(0);
          expect(p.gridPos.h).toBeGreaterThan(0);
          expect(p.gridPos.x + p.gridPos.w, p.title).toBeLessThanOrEqual(24);
        }
        for (let i = 0; i < b.panels.length; i++)
          for (let j = i + 1; j < b.panels.length; j++)
            expect(overlaps(b.panels[i]!.gridPos, b.panels[j]!.gridPos), `${b.panels[i]!.title} overlaps ${b.panels[j]!.title}`).toBe(false);
      });

      it('every data panel and every target is bound to the ${datasource} variable and has an expression', () => {
        const data = b.panels.filter((p) => p.type !== 'row');
        expect(data.length).toBeGreaterThan(3);
        for (const p of data) {
          expect(p.datasource, p.title).toEqual({ type: 'prometheus', uid: '${datasource}' });
          expect(p.targets?.length, p.title).toBeGreaterThan(0);
          for (const t of p.targets ?? []) {
            expect(t.datasource, `${p.title} ${t.refId}`).toEqual({ type: 'prometheus', uid: '${datasource}' });
            expect(t.expr.trim(), `${p.title} ${t.refId}`).not.toBe('');
          }
        }
      });

      it('server series are filtered by the job and instance variables; phase changes are annotations', () => {
        for (const e of expressions(b)) if (e.source === 'server') expect(e.expr, e.where).toContain('job=~"$job",instance=~"$instance"');
        const phase = b.annotations.list.find((a) => a.name === 'Replay phase');
        expect(phase && 'expr' in phase ? phase.expr : '').toContain('stampede_sim_phase');
        expect(phase?.datasource).toEqual({ type: 'prometheus', uid: '${datasource}' });
      });
    });
  }

  it('the outage board covers what the issue asks for', () => {
    const outage = boards.find((b) => b.uid === 'stampede-outage')!;
    const all = expressions(outage).map((e) => e.expr).join('\n');
    for (const needle of [
      'stampede_sim_time_seconds',
      'stampede_sim_phase',
      'stampede_listeners',
      'stampede_sim_join_availability_ratio',
      'stampede_client_requests_total',
      'stampede_sim_join_latency_p99_seconds',
      'histogram_quantile(0.95',
      'stampede_sim_offered_rps',
      'stampede_sim_admitted_rps',
      'stampede_sim_attack_rps',
      'slo:current_burn_rate:ratio',
    ])
      expect(all, needle).toContain(needle);
  });

  it('only uses label values the publishers can emit', () => {
    const client = ['ok', 'refused', 'error', 'timeout'];
    for (const e of boards.flatMap((b) => expressions(b))) {
      const allowed: readonly string[] = e.source === 'client' ? client : JOIN_OUTCOMES;
      for (const m of e.expr.matchAll(/outcome(?:=|!=)"([a-z_]+)"/g)) expect(allowed, e.where).toContain(m[1]);
      for (const m of e.expr.matchAll(/route="([a-z_]+)"/g)) expect(ROUTES as readonly string[], e.where).toContain(m[1]);
    }
  });
});

describe('what Grafana reads', async () => {
  const boards = await committed();
  const [outage, server] = ['stampede-outage', 'stampede-server'].map((uid) => boards.find((b) => b.uid === uid)!);
  const byTitle = (b: Dashboard, title: string): TimeSeriesPanel | StatPanel => {
    const p = b.panels.find((x) => x.title === title);
    if (!p || p.type === 'row') throw new Error(`no panel ${title}`);
    return p;
  };
  const series = (p: TimeSeriesPanel): string[] => p.targets.map((t) => t.legendFormat);

  it('carries nothing that is not Grafana\'s (no internal fields leak into the JSON)', async () => {
    for (const f of ['stampede-outage.json', 'stampede-server.json']) expect(await readFile(`${ROOT}dashboards/${f}`, 'utf8')).not.toMatch(/stampede[A-Z]\w*"/);
  });

  it('the phase stat maps every phase (and "no replay") to a name and a colour', () => {
    const phase = byTitle(outage!, 'Phase') as StatPanel;
    const mapping = phase.fieldConfig.defaults.mappings?.[0];
    expect(mapping?.type).toBe('value');
    const texts = Object.values((mapping as { options: Record<string, { text: string }> }).options).map((o) => o.text);
    expect(texts).toEqual(['no replay', ...SIM_PHASES.map((p) => p.replace('_', '-'))]);
  });

  it('stacking lives in the field config, where the time-series panel reads it, never in options', () => {
    for (const b of boards)
      for (const p of b.panels) {
        if (p.type === 'row') continue;
        expect(JSON.stringify(p.options), p.title).not.toContain('stacking');
      }
    const outcomes = byTitle(outage!, 'Join outcomes') as TimeSeriesPanel;
    expect(outcomes.fieldConfig.defaults.custom?.stacking?.mode).toBe('normal');
    expect((byTitle(outage!, 'Join latency — model and server') as TimeSeriesPanel).fieldConfig.defaults.custom?.stacking?.mode).toBe('none');
  });

  it('real and modelled listeners, and per-simulated-second and per-wall-second rates, sit on separate axes', () => {
    for (const [title, right] of [
      ['Listeners: real vs virtual', ['virtual']],
      ['Offered vs admitted', ['real offered', 'real admitted']],
      ['Attack traffic', ['client junk']],
    ] as const) {
      const p = byTitle(outage!, title) as TimeSeriesPanel;
      const o = p.fieldConfig.overrides[0]!;
      const re = new RegExp(String(o.matcher.options));
      expect(o.properties, title).toContainEqual({ id: 'custom.axisPlacement', value: 'right' });
      // exactly the named series move to the right axis (the legend is what Grafana matches)
      const names = series(p).map((l) => (l === '{{kind}}' ? ['real', 'virtual'] : [l])).flat();
      expect(names.filter((n) => re.test(n)), title).toEqual(right);
    }
  });

  it('draws threshold lines at the burn-rate factors of the alerts and at the objectives', () => {
    const burn = byTitle(outage!, 'Error-budget burn rate (5m)') as TimeSeriesPanel;
    expect(burn.fieldConfig.defaults.custom?.thresholdsStyle?.mode).toBe('dashed');
    const steps = burn.fieldConfig.defaults.thresholds?.steps.map((s) => s.value);
    for (const f of [...PAGE, ...TICKET].map((w) => w.factor)) expect(steps).toContain(f);
    expect((byTitle(outage!, 'Join availability — server view') as TimeSeriesPanel).fieldConfig.defaults.thresholds?.steps.map((s) => s.value)).toContain(0.995);
  });

  it('each board links to the other, keeping time range and variables', () => {
    expect(outage!.links).toEqual([expect.objectContaining({ url: '/d/stampede-server', keepTime: true, includeVars: true })]);
    expect(server!.links).toEqual([expect.objectContaining({ url: '/d/stampede-outage', keepTime: true, includeVars: true })]);
  });

  it('annotates phase changes, every event of the night and firing SLO alerts on both boards', () => {
    for (const b of boards) {
      const exprs = b.annotations.list.map((a) => ('expr' in a ? a.expr : ''));
      expect(exprs.some((e) => e.includes('stampede_sim_phase')), b.uid).toBe(true);
      expect(exprs.some((e) => e.includes('stampede_sim_events_total')), b.uid).toBe(true);
      expect(exprs.some((e) => e.startsWith('ALERTS{alertstate="firing"')), b.uid).toBe(true);
    }
  });
});

describe('SLO rules', () => {
  it('scales windows by the replay speed', () => {
    expect(windowFor(60, 1)).toBe('1h');
    expect(windowFor(60, 60)).toBe('1m');
    expect(windowFor(5, 60)).toBe('5s');
    expect(windowFor(4320, 60)).toBe('72m');
    expect(windowFor(5, 600)).toBe('1s');
  });

  it('every alert has a runbook_url pointing at a section of docs/runbook.md', async () => {
    const runbook = await readFile(`${ROOT}docs/runbook.md`, 'utf8');
    const anchors = [...runbook.matchAll(/^## (.+)$/gm)].map((m) => m[1]!.trim().toLowerCase().replace(/[^a-z0-9 -]/g, '').replace(/ /g, '-'));
    const alerts = [1, 60].flatMap((speed) => sloRules(speed).groups.flatMap((g) => g.rules.filter((r) => r.alert)));
    expect(alerts).toHaveLength(8);
    for (const a of alerts) {
      const url = a.annotations?.runbook_url ?? '';
      expect(url, a.alert).toMatch(/^docs\/runbook\.md#/);
      expect(anchors, `${a.alert}: ${url}`).toContain(url.split('#')[1]);
    }
  });

  it('rejects a speed below 1 with a coded error', () => {
    expect(() => sloRules(0.5)).toThrow(/SLO_RULES_BAD_SPEED/);
  });

  it('emits the Sloth series for both SLOs', () => {
    const records = sloRules(1).groups.flatMap((g) => g.rules.map((r) => `${r.record ?? r.alert} ${r.labels?.sloth_slo ?? ''}`));
    for (const slo of ['join-availability', 'join-latency'])
      for (const name of ['slo:sli_error:ratio_rate5m', 'slo:sli_error:ratio_rate3d', 'slo:objective:ratio', 'slo:error_budget:ratio', 'slo:current_burn_rate:ratio', 'slo:period_error_budget_remaining:ratio', 'sloth_slo_info'])
        expect(records).toContain(`${name} ${slo}`);
    expect(records.filter((r) => r.startsWith('StampedeJoin'))).toHaveLength(4);
  });
});

it('generateDashboards returns fresh objects each call', () => {
  const a = generateDashboards();
  a.outage.title = 'changed';
  expect(generateDashboards().outage.title).not.toBe('changed');
});
