import { stringify } from 'yaml';

/**
 * Sloth-compatible SLO recording rules and multi-window multi-burn-rate alerts (Google SRE workbook,
 * ch. 5), written out by generate.ts. Series names and sloth_* labels follow what Sloth emits, so
 * Sloth's Grafana SLO dashboards work on top of them.
 *
 * Two things differ from a plain Sloth file, both so that the budget is a number from the very first
 * evaluation: a window with no events has an error ratio of 0 (no bad events), never 0/0 = NaN — one
 * NaN sample would poison `sum_over_time` over the whole 30-day window — and each SLO's SLI and meta
 * recordings sit in one group, evaluated in order, so the period series never reads an SLI that has not
 * been recorded yet.
 */

export interface Slo {
  /** sloth_slo */
  name: string;
  objectivePercent: number;
  description: string;
  /** PromQL for the bad-event and all-event rates; `$W` is replaced by the window. */
  errors: string;
  total: string;
  alertName: string;
}

/** Where the alerts' runbook_url points: a page in this repository, one section per alert. */
export const RUNBOOK = 'docs/runbook.md';

export const SERVICE = 'stampede';
export const PERIOD_DAYS = 30;

/** Windows in (real) minutes and the SRE workbook's burn-rate factors. */
export const PAGE = [
  { factor: 14.4, long: 60, short: 5 },
  { factor: 6, long: 360, short: 30 },
] as const;
export const TICKET = [
  { factor: 3, long: 1440, short: 120 },
  { factor: 1, long: 4320, short: 360 },
] as const;

const JOIN_BAD_OUTCOMES = 'failed|overloaded|capacity|rate_limited|draining';

export const SLOS: Slo[] = [
  {
    name: 'join-availability',
    objectivePercent: 99.5,
    description: 'Join attempts (real and replayed) end in a ticket; client mistakes (4xx, outcome="rejected") do not count.',
    errors: `sum(rate(stampede_join_attempts_total{outcome=~"${JOIN_BAD_OUTCOMES}"}[$W]))`,
    total: 'sum(rate(stampede_join_attempts_total{outcome!="rejected"}[$W]))',
    alertName: 'StampedeJoinAvailability',
  },
  {
    name: 'join-latency',
    objectivePercent: 99,
    description: 'Real join requests are answered within 500 ms (stampede_http_request_duration_seconds, route="join").',
    errors:
      '(sum(rate(stampede_http_request_duration_seconds_count{route="join"}[$W])) - sum(rate(stampede_http_request_duration_seconds_bucket{route="join",le="0.5"}[$W])))',
    total: 'sum(rate(stampede_http_request_duration_seconds_count{route="join"}[$W]))',
    alertName: 'StampedeJoinLatency',
  },
];

/** Prometheus duration for `minutes` of simulated time replayed at `speed`× (whole seconds, at least 1s). */
export function windowFor(minutes: number, speed: number): string {
  const seconds = Math.max(1, Math.round((minutes * 60) / speed));
  if (seconds % 86400 === 0) return `${seconds / 86400}d`;
  if (seconds % 3600 === 0) return `${seconds / 3600}h`;
  if (seconds % 60 === 0) return `${seconds / 60}m`;
  return `${seconds}s`;
}

export interface Rule {
  record?: string;
  alert?: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

function ids(slo: Slo): Record<string, string> {
  return { sloth_id: `${SERVICE}-${slo.name}`, sloth_service: SERVICE, sloth_slo: slo.name };
}

function sel(slo: Slo): string {
  const l = ids(slo);
  return `sloth_id="${l.sloth_id}", sloth_service="${l.sloth_service}", sloth_slo="${l.sloth_slo}"`;
}

export interface RuleFile {
  groups: { name: string; interval?: string; rules: Rule[] }[];
}

/**
 * The rule file for a replay speed. At speed 1 the windows are the workbook's; at speed N each window
 * is divided by N so that "1 hour" still means one hour of the simulated outage. Series names keep the
 * real-time suffix (`ratio_rate1h`) so dashboards and Sloth's boards need no change.
 */
export function sloRules(speed = 1): RuleFile {
  if (!(speed >= 1) || !Number.isFinite(speed)) throw new Error(`SLO_RULES_BAD_SPEED: speed must be a finite number ≥ 1, got ${speed}`);
  const minutes = [...new Set([...PAGE, ...TICKET].flatMap((w) => [w.short, w.long]))].sort((a, b) => a - b);
  const name = (m: number): string => windowFor(m, 1);
  const groups: RuleFile['groups'] = [];
  for (const slo of SLOS) {
    const sli: Rule[] = minutes.map((m) => ({
      record: `slo:sli_error:ratio_rate${name(m)}`,
      expr: errorRatio(slo, windowFor(m, speed)),
      labels: { ...ids(slo), sloth_window: name(m) },
    }));
    const budget = 1 - slo.objectivePercent / 100;
    const periodWindow = windowFor(PERIOD_DAYS * 1440, speed);
    const meta: Rule[] = [
      { record: 'slo:objective:ratio', expr: `vector(${slo.objectivePercent / 100})`, labels: ids(slo) },
      { record: 'slo:error_budget:ratio', expr: `vector(${round(budget)})`, labels: ids(slo) },
      { record: 'slo:time_period:days', expr: `vector(${PERIOD_DAYS})`, labels: ids(slo) },
      {
        record: `slo:sli_error:ratio_rate${PERIOD_DAYS}d`,
        expr: `sum_over_time(slo:sli_error:ratio_rate5m{${sel(slo)}}[${periodWindow}])\n/ ignoring (sloth_window)\ncount_over_time(slo:sli_error:ratio_rate5m{${sel(slo)}}[${periodWindow}])\n`,
        labels: { ...ids(slo), sloth_window: `${PERIOD_DAYS}d` },
      },
      {
        record: 'slo:current_burn_rate:ratio',
        expr: `slo:sli_error:ratio_rate5m{${sel(slo)}}\n/ on (sloth_id, sloth_slo, sloth_service) group_left\nslo:error_budget:ratio{${sel(slo)}}\n`,
        labels: ids(slo),
      },
      {
        record: 'slo:period_burn_rate:ratio',
        expr: `slo:sli_error:ratio_rate${PERIOD_DAYS}d{${sel(slo)}}\n/ on (sloth_id, sloth_slo, sloth_service) group_left\nslo:error_budget:ratio{${sel(slo)}}\n`,
        labels: ids(slo),
      },
      {
        record: 'slo:period_error_budget_remaining:ratio',
        expr: `1 - slo:period_burn_rate:ratio{${sel(slo)}}`,
        labels: ids(slo),
      },
      {
        record: 'sloth_slo_info',
        expr: 'vector(1)',
        labels: { ...ids(slo), sloth_mode: 'cli-gen-prom', sloth_objective: String(slo.objectivePercent), sloth_spec: 'prometheus/v1', sloth_version: 'stampede' },
      },
    ];
    const cond = (ws: readonly { factor: number; long: number; short: number }[]): string =>
      ws
        .map(
          (w) =>
            `(\n  max(slo:sli_error:ratio_rate${name(w.short)}{${sel(slo)}} > (${w.factor} * ${round(budget)})) without (sloth_window)\n  and\n  max(slo:sli_error:ratio_rate${name(w.long)}{${sel(slo)}} > (${w.factor} * ${round(budget)})) without (sloth_window)\n)`,
        )
        .join('\nor\n');
    const alerts: Rule[] = [
      {
        alert: `${slo.alertName}Page`,
        expr: cond(PAGE) + '\n',
        labels: { severity: 'page', sloth_severity: 'page' },
        annotations: {
          summary: `${slo.name}: error budget burning fast (14.4× over 1h and 5m, or 6× over 6h and 30m)`,
          title: `(page) ${SERVICE} ${slo.name} SLO error budget burn rate is too fast.`,
          runbook_url: runbookUrl(`${slo.alertName}Page`),
        },
      },
      {
        alert: `${slo.alertName}Ticket`,
        expr: cond(TICKET) + '\n',
        labels: { severity: 'ticket', sloth_severity: 'ticket' },
        annotations: {
          summary: `${slo.name}: error budget burning steadily (3× over 1d and 2h, or 1× over 3d and 6h)`,
          title: `(ticket) ${SERVICE} ${slo.name} SLO error budget burn rate is over expected.`,
          runbook_url: runbookUrl(`${slo.alertName}Ticket`),
        },
      },
    ];
    const suffix = speed === 1 ? '' : `-speed${speed}`;
    groups.push({ name: `sloth-slo-recordings-${SERVICE}-${slo.name}${suffix}`, rules: [...sli, ...meta] });
    groups.push({ name: `sloth-slo-alerts-${SERVICE}-${slo.name}${suffix}`, rules: alerts });
  }
  return { groups };
}

/**
 * The bad-event share over one window: 0 when the window holds no events at all (nothing failed), so
 * the series is a number from the first evaluation — before the first scrape, before the first join.
 */
function errorRatio(slo: Slo, window: string): string {
  const errors = slo.errors.replaceAll('$W', window);
  const total = slo.total.replaceAll('$W', window);
  return `(\n  (${errors})\n  /\n  (${total} > 0)\n)\nor vector(0)\n`;
}

/** The runbook section for an alert (GitHub-style anchor of its heading). */
export function runbookUrl(alert: string): string {
  return `${RUNBOOK}#${alert.toLowerCase()}`;
}

function round(x: number): number {
  return Math.round(x * 1e9) / 1e9;
}

export function renderRules(speed = 1): string {
  const head =
    `# Generated by src/dashboards/generate.ts — do not edit by hand.\n` +
    (speed === 1 ? '# SLO windows for real time (speed 1).\n' : `# SLO windows for a replay at --speed ${speed}: every window divided by ${speed}.\n`);
  return head + stringify(sloRules(speed), { lineWidth: 0 });
}
