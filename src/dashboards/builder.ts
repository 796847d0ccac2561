/**
 * Why one file (~330 lines): one typed vocabulary for Grafana dashboards — panel, row, variable,
 * annotation and link builders and the grid layout — against @grafana/schema's types, about a third of
 * it type declarations. The dashboards themselves are in `server.ts`, `outage.ts` and `rules.ts`.
 */
/**
 * Stampede's dashboards, typed against Grafana's own published schema (@grafana/schema): the dashboard,
 * row, variable, link, mapping and threshold types, and the time-series and stat panels' options and
 * field config as the panel plugins declare them. An unknown or misspelt field is a compile error.
 */
import {
  AxisPlacement,
  BigValueColorMode,
  BigValueGraphMode,
  BigValueJustifyMode,
  BigValueTextMode,
  GraphDrawStyle,
  GraphThresholdsStyleMode,
  LegendDisplayMode,
  PercentChangeColorMode,
  ScaleDistribution,
  SortOrder,
  StackingMode,
  ThresholdsMode,
  TooltipDisplayMode,
  VariableHide,
  VariableRefresh,
  VisibilityMode,
  VizOrientation,
  type AnnotationQuery,
  type Dashboard as GrafanaDashboard,
  type DashboardLink,
  type DataQuery,
  type DataSourceRef,
  type FieldConfig,
  type MatcherConfig,
  type RowPanel,
  type ScaleDistributionConfig,
  type Threshold,
  type ValueMapping,
  type VariableModel,
} from '@grafana/schema';
import type { Options as StatOptions } from '@grafana/schema/dist/esm/raw/composable/stat/panelcfg/x/StatPanelCfg_types.gen';
import type { FieldConfig as TimeSeriesFieldConfig, Options as TimeSeriesOptions } from '@grafana/schema/dist/esm/raw/composable/timeseries/panelcfg/x/TimeSeriesPanelCfg_types.gen';
import type { Panel as GrafanaPanel } from '@grafana/schema';

export const DATASOURCE = { type: 'prometheus', uid: '${datasource}' } as const satisfies DataSourceRef;

/**
 * A Prometheus query as Grafana's Prometheus data source stores it. @grafana/schema only has the common
 * part (DataQuery); the Prometheus fields live in @grafana/prometheus, a React package we do not pull in.
 */
export interface PromQuery extends DataQuery {
  expr: string;
  legendFormat: string;
  datasource: DataSourceRef;
  range: boolean;
  instant: boolean;
}

/** A Prometheus annotation: the fields Grafana's Prometheus annotation editor writes next to the common ones. */
export interface PromAnnotation extends AnnotationQuery {
  expr: string;
  titleFormat: string;
  textFormat: string;
  step: string;
  useValueForTime: boolean;
}

/** Field config whose `custom` block is exactly the panel plugin's (Grafana's own type adds an index signature). */
interface TypedFieldConfig<C> {
  defaults: Omit<FieldConfig, 'custom'> & { custom?: C };
  overrides: { matcher: MatcherConfig; properties: { id: string; value?: unknown }[] }[];
}

type TypedPanel<T extends string, O, C> = Omit<GrafanaPanel, 'type' | 'options' | 'fieldConfig' | 'targets' | 'id' | 'gridPos' | 'title'> & {
  id: number;
  type: T;
  title: string;
  gridPos: GridPos;
  options: O;
  fieldConfig: TypedFieldConfig<C>;
  targets: PromQuery[];
};
export type TimeSeriesPanel = TypedPanel<'timeseries', TimeSeriesOptions, TimeSeriesFieldConfig>;
export type StatPanel = TypedPanel<'stat', StatOptions, Record<string, never>>;
export type Row = Omit<RowPanel, 'gridPos' | 'title'> & { gridPos: GridPos; title: string };
export type Panel = TimeSeriesPanel | StatPanel | Row;

export interface GridPos {
  x: number;
  y: number;
  w: number;
  h: number;
}

export type Dashboard = Omit<GrafanaDashboard, 'panels' | 'annotations' | 'templating' | 'links' | 'uid' | 'title'> & {
  uid: string;
  title: string;
  panels: Panel[];
  annotations: { list: (AnnotationQuery | PromAnnotation)[] };
  templating: { list: VariableModel[] };
  links: DashboardLink[];
};

/** Grafana units Stampede's panels use. */
export type Unit = 'short' | 'percentunit' | 's' | 'reqps' | 'bytes' | 'dateTimeAsIso' | 'none' | 'ops';

/** The selector every server/client series is filtered by; metrics carry no space label by design. */
export const SEL = 'job=~"$job",instance=~"$instance"';

export interface TargetSpec {
  expr: string;
  legend: string;
}

/** Series (by a regular expression over their legend) drawn on a second axis on the right. */
export interface RightAxis {
  match: string;
  label: string;
  unit?: Unit;
  log?: boolean;
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
  /** Stack the series (Grafana reads this from the field config's `custom.stacking`). */
  stack?: boolean;
  /** Label of the (left) axis. */
  axisLabel?: string;
  /** A logarithmic left axis (symmetric: linear below 1, so zeros still draw). */
  log?: boolean;
  right?: RightAxis;
  /** Dashed threshold lines (time series) or value colours (stat), in ascending order. */
  thresholds?: { value: number; color: string }[];
  mappings?: ValueMapping[];
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

/** Symmetric log (linear below 1) so that zeros still draw on a logarithmic axis. */
function scale(log: boolean | undefined): ScaleDistributionConfig {
  return log ? { type: ScaleDistribution.Symlog, log: 10, linearThreshold: 1 } : { type: ScaleDistribution.Linear };
}

/** A field-config override property on the time-series plugin's `custom` block, typed by its key. */
function custom<K extends keyof TimeSeriesFieldConfig>(key: K, value: TimeSeriesFieldConfig[K]): { id: string; value: unknown } {
  return { id: `custom.${key}`, value };
}

function defaults(p: PanelSpec): Omit<FieldConfig, 'custom'> {
  const steps: Threshold[] = [{ color: 'green', value: null }, ...(p.thresholds ?? [])];
  return {
    unit: p.unit,
    ...(p.min !== undefined ? { min: p.min } : {}),
    ...(p.max !== undefined ? { max: p.max } : {}),
    thresholds: { mode: ThresholdsMode.Absolute, steps },
    mappings: p.mappings ?? [],
  };
}

function targets(p: PanelSpec, instant: boolean): PromQuery[] {
  return p.targets.map((t, i) => ({ refId: String.fromCharCode(65 + i), expr: t.expr, legendFormat: t.legend, datasource: DATASOURCE, range: !instant, instant }));
}

function panel(id: number, p: PanelSpec, gridPos: GridPos): TimeSeriesPanel | StatPanel {
  const common = { id, title: p.title, description: p.description, gridPos, datasource: DATASOURCE };
  if (p.kind === 'stat') {
    const options: StatOptions = {
      reduceOptions: { calcs: ['lastNotNull'], fields: '', values: false },
      orientation: VizOrientation.Auto,
      colorMode: p.mappings || p.thresholds ? BigValueColorMode.Background : BigValueColorMode.Value,
      graphMode: BigValueGraphMode.None,
      justifyMode: BigValueJustifyMode.Auto,
      textMode: BigValueTextMode.Value,
      wideLayout: true,
      showPercentChange: false,
      percentChangeColorMode: PercentChangeColorMode.Standard,
    };
    return { ...common, type: 'stat', targets: targets(p, true), options, fieldConfig: { defaults: defaults(p), overrides: [] } };
  }
  const options: TimeSeriesOptions = {
    legend: { displayMode: LegendDisplayMode.List, placement: 'bottom', showLegend: true, calcs: [] },
    tooltip: { mode: TooltipDisplayMode.Multi, sort: SortOrder.None },
  };
  const fieldCustom: TimeSeriesFieldConfig = {
    drawStyle: GraphDrawStyle.Line,
    lineWidth: 1,
    fillOpacity: p.stack ? 40 : 0,
    showPoints: VisibilityMode.Never,
    spanNulls: false,
    axisPlacement: AxisPlacement.Auto,
    axisLabel: p.axisLabel ?? '',
    scaleDistribution: scale(p.log),
    stacking: { mode: p.stack ? StackingMode.Normal : StackingMode.None, group: 'A' },
    thresholdsStyle: { mode: p.thresholds ? GraphThresholdsStyleMode.Dashed : GraphThresholdsStyleMode.Off },
  };
  const overrides: TypedFieldConfig<TimeSeriesFieldConfig>['overrides'] = p.right
    ? [
        {
          matcher: { id: 'byRegexp', options: p.right.match },
          properties: [
            custom('axisPlacement', AxisPlacement.Right),
            custom('axisLabel', p.right.label),
            custom('scaleDistribution', scale(p.right.log)),
            ...(p.right.unit ? [{ id: 'unit', value: p.right.unit }] : []),
          ],
        },
      ]
    : [];
  return { ...common, type: 'timeseries', targets: targets(p, false), options, fieldConfig: { defaults: { ...defaults(p), custom: fieldCustom }, overrides } };
}

/** `datasource`, `job` and `instance`: the board works against any Prometheus scraping any Stampede. */
export function standardVariables(anchorMetric: string): VariableModel[] {
  return [
    { name: 'datasource', label: 'Data source', type: 'datasource', query: 'prometheus', hide: VariableHide.dontHide, regex: '' },
    queryVariable('job', 'Job', `label_values(${anchorMetric}, job)`),
    queryVariable('instance', 'Instance', `label_values(${anchorMetric}{job=~"$job"}, instance)`),
  ];
}

/** A multi-select query variable with "All" (= `.*`), refreshed when the time range changes. */
export function queryVariable(name: string, label: string, query: string): VariableModel {
  return { name, label, type: 'query', datasource: DATASOURCE, query: { query, refId: name }, current: { selected: true, text: 'All', value: '$__all' }, includeAll: true, allValue: '.*', multi: true, refresh: VariableRefresh.onTimeRangeChanged, hide: VariableHide.dontHide };
}

export const BUILTIN_ANNOTATION: AnnotationQuery = {
  name: 'Annotations & Alerts',
  datasource: { type: 'grafana', uid: '-- Grafana --' },
  enable: true,
  hide: true,
  iconColor: 'rgba(0, 211, 255, 1)',
  builtIn: 1,
  type: 'dashboard',
};

/** A Prometheus annotation: every returned sample marks a moment (consecutive ones a region). */
export function promAnnotation(name: string, iconColor: string, expr: string, titleFormat: string, textFormat: string): PromAnnotation {
  return { name, datasource: DATASOURCE, enable: true, iconColor, expr, titleFormat, textFormat, step: '1s', useValueForTime: false };
}

/** A link in the dashboard's header to another Stampede board, keeping the time range and variables. */
export function boardLink(title: string, uid: string, tooltip: string): DashboardLink {
  return { title, type: 'link', url: `/d/${uid}`, icon: 'dashboard', tooltip, tags: [], asDropdown: false, includeVars: true, keepTime: true, targetBlank: false };
}

export interface DashboardSpec {
  uid: string;
  title: string;
  description: string;
  tags: string[];
  rows: RowSpec[];
  annotations: PromAnnotation[];
  links: DashboardLink[];
  variables?: VariableModel[];
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
    templating: { list: [...standardVariables('stampede_listeners'), ...(spec.variables ?? [])] },
    annotations: { list: [BUILTIN_ANNOTATION, ...spec.annotations] },
    panels: layout(spec.rows),
    links: spec.links,
  };
}

/** Which process publishes the series an expression reads: the server (or replay), a load generator's client view, or the rules. */
export type Source = 'server' | 'client' | 'rules';

export function sourceOf(expr: string): Source {
  if (/\bslo:|\bALERTS\b/.test(expr)) return 'rules';
  if (expr.includes('stampede_client_')) return 'client';
  return 'server';
}

/** Every PromQL expression of a dashboard (panel targets and annotations), with where it comes from. */
export function expressions(d: Dashboard): { where: string; expr: string; source: Source }[] {
  const out: { where: string; expr: string; source: Source }[] = [];
  for (const p of d.panels) if (p.type !== 'row') for (const t of p.targets) out.push({ where: `${d.uid} / ${p.title} / ${t.refId}`, expr: t.expr, source: sourceOf(t.expr) });
  for (const a of d.annotations.list) if ('expr' in a) out.push({ where: `${d.uid} / annotation ${a.name}`, expr: a.expr, source: sourceOf(a.expr) });
  return out;
}
