/**
 * A deliberately small typed model of the Grafana dashboard JSON we emit (schemaVersion 39).
 * Only the fields Stampede's boards use are typed; Grafana fills in the rest on import.
 */

export const DATASOURCE = { type: 'prometheus', uid: '${datasource}' } as const;
export type DatasourceRef = typeof DATASOURCE;

/** Who publishes a target's series: the server (and replay) or the load generator. */
export type Source = 'server' | 'client' | 'rules';

export interface Target {
  refId: string;
  expr: string;
  legendFormat: string;
  datasource: DatasourceRef;
  /** Not a Grafana field: Grafana ignores it; tests use it to know which process must run. */
  stampedeSource: Source;
}

export interface GridPos {
  x: number;
  y: number;
  w: number;
  h: number;
}

export type Unit = 'short' | 'percentunit' | 's' | 'reqps' | 'bytes' | 'dateTimeAsIso' | 'none' | 'ops';

export interface Panel {
  id: number;
  type: 'timeseries' | 'stat' | 'row';
  title: string;
  description?: string;
  gridPos: GridPos;
  datasource?: DatasourceRef;
  targets?: Target[];
  fieldConfig?: { defaults: { unit: Unit; min?: number; max?: number; decimals?: number }; overrides: [] };
  options?: Record<string, unknown>;
  collapsed?: boolean;
  panels?: [];
}

export interface Variable {
  name: string;
  label: string;
  type: 'datasource' | 'query';
  query: string | { query: string; refId: string };
  datasource?: DatasourceRef;
  current: Record<string, never>;
  includeAll?: boolean;
  allValue?: string;
  multi?: boolean;
  refresh?: 1 | 2;
  hide: 0;
  regex?: string;
}

export interface Annotation {
  name: string;
  datasource: DatasourceRef | { type: 'grafana'; uid: '-- Grafana --' };
  enable: boolean;
  iconColor: string;
  expr?: string;
  titleFormat?: string;
  textFormat?: string;
  step?: string;
  builtIn?: 1;
  hide?: boolean;
  type?: 'dashboard';
  stampedeSource?: Source;
}

export interface Dashboard {
  uid: string;
  title: string;
  description: string;
  tags: string[];
  editable: boolean;
  schemaVersion: 39;
  time: { from: string; to: string };
  refresh: string;
  timezone: 'browser';
  templating: { list: Variable[] };
  annotations: { list: Annotation[] };
  panels: Panel[];
  links: [];
}

/** The selector every server/client series is filtered by; metrics carry no space label by design. */
export const SEL = 'job=~"$job",instance=~"$instance"';

export interface TargetSpec {
  expr: string;
  legend: string;
  source?: Source;
}

export interface PanelSpec {
  title: string;
  description: string;
  unit: Unit;
  targets: TargetSpec[];
  kind?: 'timeseries' | 'stat';
  /** Grid width in Grafana's 24-column grid (default 12) and height (default 8). */
  w?: number;
  h?: number;
  min?: number;
  max?: number;
  stack?: boolean;
}

export interface RowSpec {
  row: string;
  panels: PanelSpec[];
}

const GRID_COLUMNS = 24;

/**
 * Lays rows out top to bottom and panels left to right, wrapping at 24 columns, assigning ids in
 * order — so positions and ids can never collide however the spec is edited.
 */
export function layout(rows: RowSpec[]): Panel[] {
  const out: Panel[] = [];
  let id = 1;
  let y = 0;
  for (const r of rows) {
    out.push({ id: id++, type: 'row', title: r.row, gridPos: { x: 0, y, w: GRID_COLUMNS, h: 1 }, collapsed: false, panels: [] });
    y += 1;
    let x = 0;
    let rowHeight = 0;
    for (const p of r.panels) {
      const w = p.w ?? 12;
      const h = p.h ?? 8;
      if (x + w > GRID_COLUMNS) {
        y += rowHeight;
        x = 0;
        rowHeight = 0;
      }
      out.push(panel(id++, p, { x, y, w, h }));
      x += w;
      rowHeight = Math.max(rowHeight, h);
    }
    y += rowHeight;
  }
  return out;
}

function panel(id: number, p: PanelSpec, gridPos: GridPos): Panel {
  const kind = p.kind ?? 'timeseries';
  const defaults: { unit: Unit; min?: number; max?: number } = { unit: p.unit };
  if (p.min !== undefined) defaults.min = p.min;
  if (p.max !== undefined) defaults.max = p.max;
  return {
    id,
    type: kind,
    title: p.title,
    description: p.description,
    gridPos,
    datasource: DATASOURCE,
    targets: p.targets.map((t, i) => ({
      refId: String.fromCharCode(65 + i),
      expr: t.expr,
      legendFormat: t.legend,
      datasource: DATASOURCE,
      stampedeSource: t.source ?? 'server',
    })),
    fieldConfig: { defaults, overrides: [] },
    options:
      kind === 'stat'
        ? { reduceOptions: { calcs: ['lastNotNull'], fields: '', values: false }, colorMode: 'value', graphMode: 'none', textMode: 'auto' }
        : { legend: { displayMode: 'list', placement: 'bottom', showLegend: true }, tooltip: { mode: 'multi', sort: 'none' }, ...(p.stack ? { stacking: { mode: 'normal' } } : {}) },
  };
}

/** `datasource`, `job` and `instance`: the board works against any Prometheus scraping any Stampede. */
export function standardVariables(anchorMetric: string): Variable[] {
  return [
    { name: 'datasource', label: 'Data source', type: 'datasource', query: 'prometheus', current: {}, hide: 0, regex: '' },
    queryVariable('job', 'Job', `label_values(${anchorMetric}, job)`),
    queryVariable('instance', 'Instance', `label_values(${anchorMetric}{job=~"$job"}, instance)`),
  ];
}

/** A multi-select query variable with "All" (= `.*`), refreshed when the time range changes. */
export function queryVariable(name: string, label: string, query: string): Variable {
  return { name, label, type: 'query', datasource: DATASOURCE, query: { query, refId: name }, current: {}, includeAll: true, allValue: '.*', multi: true, refresh: 2, hide: 0 };
}

export const BUILTIN_ANNOTATION: Annotation = {
  name: 'Annotations & Alerts',
  datasource: { type: 'grafana', uid: '-- Grafana --' },
  enable: true,
  hide: true,
  iconColor: 'rgba(0, 211, 255, 1)',
  builtIn: 1,
  type: 'dashboard',
};

/** Marks each replay phase change: the phase whose gauge just became 1. */
export function phaseAnnotation(): Annotation {
  return {
    name: 'Replay phase',
    datasource: DATASOURCE,
    enable: true,
    iconColor: 'orange',
    expr: `(stampede_sim_phase{${SEL}} == 1) and on (job, instance, phase) (changes(stampede_sim_phase{${SEL}}[$__rate_interval]) > 0)`,
    titleFormat: 'phase: {{phase}}',
    textFormat: '{{instance}} entered {{phase}}',
    step: '1s',
    stampedeSource: 'server',
  };
}

export interface DashboardSpec {
  uid: string;
  title: string;
  description: string;
  tags: string[];
  rows: RowSpec[];
  annotations: Annotation[];
}

export function dashboard(spec: DashboardSpec): Dashboard {
  return {
    uid: spec.uid,
    title: spec.title,
    description: spec.description,
    tags: spec.tags,
    editable: true,
    schemaVersion: 39,
    time: { from: 'now-30m', to: 'now' },
    refresh: '5s',
    timezone: 'browser',
    templating: { list: standardVariables('stampede_listeners') },
    annotations: { list: [BUILTIN_ANNOTATION, ...spec.annotations] },
    panels: layout(spec.rows),
    links: [],
  };
}

/** Every PromQL expression of a dashboard (panel targets and annotations), with where it comes from. */
export function expressions(d: Dashboard): { where: string; expr: string; source: Source }[] {
  const out: { where: string; expr: string; source: Source }[] = [];
  for (const p of d.panels) for (const t of p.targets ?? []) out.push({ where: `${d.uid} / ${p.title} / ${t.refId}`, expr: t.expr, source: t.stampedeSource });
  for (const a of d.annotations.list) if (a.expr) out.push({ where: `${d.uid} / annotation ${a.name}`, expr: a.expr, source: a.stampedeSource ?? 'server' });
  return out;
}
