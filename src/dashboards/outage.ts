import { MappingType, type ValueMapping } from '@grafana/schema';
import { SIM_PHASES } from '../metrics/index.js';
import { boardLink, dashboard, queryVariable, SEL, type Dashboard, type TargetSpec } from './builder.js';
import { boardAnnotations, SERVER_UID } from './server.js';
import { PAGE, SLOS, TICKET } from './rules.js';

export const OUTAGE_UID = 'stampede-outage';
const R = '$__rate_interval';
/**
 * Client-view series: what a load generator (job stampede-load) or the replay's own real listeners
 * (job stampede) measured, under the same names and labels; picked by their own variable.
 */
const CLIENT = 'job=~"$load_job"';

function quantiles(metric: string, filter: string, by: string, label: string, qs = [0.5, 0.95, 0.99]): TargetSpec[] {
  return qs.map((q) => ({ expr: `histogram_quantile(${q}, sum by (${by}) (rate(${metric}{${filter}}[${R}])))`, legend: `${label} p${Math.round(q * 100)}` }));
}

const joinRate = (extra: string, by = ''): string => `sum${by ? ` by (${by})` : ''} (rate(stampede_join_attempts_total{${SEL}${extra}}[${R}]))`;

const PHASE_COLORS: Record<(typeof SIM_PHASES)[number], string> = { pre_open: 'blue', open: 'yellow', failing: 'red', live: 'green', ended: 'purple' };

/**
 * The phase as one number, 0 with no replay and 1 + the phase's index otherwise, so that the stat can
 * map it to the phase's name and colour (the gauge is 1 for the phase in force, 0 for the others).
 */
export function phaseExpr(): string {
  return SIM_PHASES.map((p, i) => `${i + 1} * max(stampede_sim_phase{${SEL},phase="${p}"})`).join(' + ');
}

export function phaseMappings(): ValueMapping[] {
  const options: Record<string, { text: string; color: string; index: number }> = { '0': { text: 'no replay', color: 'text', index: 0 } };
  SIM_PHASES.forEach((p, i) => (options[String(i + 1)] = { text: p.replace('_', '-'), color: PHASE_COLORS[p], index: i + 1 }));
  return [{ type: MappingType.ValueToText, options }];
}

const objective = (name: string): number => SLOS.find((s) => s.name === name)!.objectivePercent / 100;

export function outageDashboard(): Dashboard {
  return dashboard({
    uid: OUTAGE_UID,
    title: 'Stampede — outage overview',
    description: 'The 2024-08-12 replay as it unfolds: simulated clock and phase, the crowd, join availability and latency from the server and from clients, load, attack and error-budget burn.',
    tags: ['stampede', 'slo'],
    annotations: boardAnnotations(),
    links: [boardLink('Server health', SERVER_UID, 'Connections, fan-out, event loop, memory, HTTP by route of the same process')],
    variables: [queryVariable('load_job', 'Client job', 'label_values(stampede_client_requests_total, job)')],
    rows: [
      {
        row: 'Replay',
        panels: [
          { kind: 'stat', title: 'Simulated clock', description: 'The replay clock (stampede_sim_time_seconds).', unit: 'dateTimeAsIso', w: 8, h: 4, targets: [{ expr: `max(stampede_sim_time_seconds{${SEL}}) * 1000`, legend: 'simulated time' }] },
          { kind: 'stat', title: 'Phase', description: 'The replay phase in force (stampede_sim_phase); "no replay" when the process runs none.', unit: 'none', w: 8, h: 4, mappings: phaseMappings(), targets: [{ expr: phaseExpr(), legend: 'phase' }] },
          { kind: 'stat', title: 'Replay speed', description: 'Simulated seconds per wall second; 0 when no replay runs.', unit: 'none', w: 8, h: 4, targets: [{ expr: `max(stampede_sim_speed_ratio{${SEL}})`, legend: 'speed' }] },
        ],
      },
      {
        row: 'Crowd',
        panels: [
          {
            title: 'Listeners: real vs virtual',
            description: 'Real sockets (left axis) and the modelled crowd (right axis, about 10,000 times more), as the server counts them.',
            unit: 'short',
            w: 24,
            axisLabel: 'real listeners',
            right: { match: '^virtual$', label: 'modelled listeners' },
            targets: [{ expr: `sum by (kind) (stampede_listeners{${SEL}})`, legend: '{{kind}}' }],
          },
        ],
      },
      {
        row: 'Join availability',
        panels: [
          {
            title: 'Join availability — server view',
            description: 'Admitted share of join attempts (client mistakes — outcome="rejected" — excluded), overall and by population, next to the model. The dashed line is the SLO objective.',
            unit: 'percentunit',
            min: 0,
            max: 1,
            thresholds: [{ value: objective('join-availability'), color: 'red' }],
            targets: [
              { expr: `${joinRate(',outcome="admitted"')} / ${joinRate(',outcome!="rejected"')}`, legend: 'server: all joins' },
              { expr: `${joinRate(',outcome="admitted"', 'kind')} / ${joinRate(',outcome!="rejected"', 'kind')}`, legend: 'server: {{kind}}' },
              { expr: `avg(stampede_sim_join_availability_ratio{${SEL}})`, legend: 'model' },
            ],
          },
          {
            title: 'Join availability — client view',
            description: 'Share of join requests that succeeded as clients saw them (timeouts and refusals count as failures): the replay\'s real listeners and any load generator.',
            unit: 'percentunit',
            min: 0,
            max: 1,
            thresholds: [{ value: objective('join-availability'), color: 'red' }],
            targets: [
              {
                expr: `sum by (job) (rate(stampede_client_requests_total{${CLIENT},kind="join",outcome="ok"}[${R}])) / sum by (job) (rate(stampede_client_requests_total{${CLIENT},kind="join"}[${R}]))`,
                legend: 'clients ({{job}})',
              },
            ],
          },
          { title: 'Join outcomes', description: 'Join attempts per wall second by population and outcome, stacked.', unit: 'reqps', w: 24, stack: true, targets: [{ expr: joinRate('', 'kind, outcome'), legend: '{{kind}} {{outcome}}' }] },
        ],
      },
      {
        row: 'Join latency',
        panels: [
          {
            title: 'Join latency — model and server',
            description: 'Modelled join-path p50/p99 and the real join route\'s p50/p95/p99 from stampede_http_request_duration_seconds. The dashed line is the latency SLO\'s 500 ms.',
            unit: 's',
            thresholds: [{ value: 0.5, color: 'red' }],
            targets: [
              { expr: `max(stampede_sim_join_latency_p50_seconds{${SEL}})`, legend: 'model p50' },
              { expr: `max(stampede_sim_join_latency_p99_seconds{${SEL}})`, legend: 'model p99' },
              ...quantiles('stampede_http_request_duration_seconds_bucket', `${SEL},route="join"`, 'le', 'http join'),
            ],
          },
          {
            title: 'Join latency — client view',
            description: 'What clients measured, from the intended send time to the answer (the replay\'s real listeners and any load generator).',
            unit: 's',
            thresholds: [{ value: 0.5, color: 'red' }],
            targets: quantiles('stampede_client_request_duration_seconds_bucket', `${CLIENT},kind="join"`, 'le', 'client join'),
          },
          {
            title: 'Audio delay at clients',
            description: 'Time from a chunk\'s capture to its arrival at real listeners.',
            unit: 's',
            targets: quantiles('stampede_client_audio_delay_seconds_bucket', CLIENT, 'le', 'audio delay', [0.5, 0.99]),
          },
          {
            title: 'Client requests by kind and outcome',
            description: 'Everything clients sent, including junk and WebSocket connects, per wall second, stacked.',
            unit: 'reqps',
            stack: true,
            targets: [{ expr: `sum by (kind, outcome) (rate(stampede_client_requests_total{${CLIENT}}[${R}]))`, legend: '{{kind}} {{outcome}}' }],
          },
        ],
      },
      {
        row: 'Load and attack',
        panels: [
          {
            title: 'Offered vs admitted',
            description: 'Modelled join-path load per simulated second (left axis) and real join calls per wall second (right axis): two clocks, two axes.',
            unit: 'reqps',
            axisLabel: 'per simulated second',
            right: { match: '^real ', label: 'per wall second' },
            targets: [
              { expr: `max(stampede_sim_offered_rps{${SEL}})`, legend: 'model offered' },
              { expr: `max(stampede_sim_admitted_rps{${SEL}})`, legend: 'model admitted' },
              { expr: joinRate(',kind="real"'), legend: 'real offered' },
              { expr: joinRate(',kind="real",outcome="admitted"'), legend: 'real admitted' },
            ],
          },
          {
            title: 'Attack traffic',
            description: 'Modelled attack reaching the join path per simulated second (left), and junk clients sent per wall second (right).',
            unit: 'reqps',
            axisLabel: 'per simulated second',
            right: { match: '^client ', label: 'per wall second' },
            targets: [
              { expr: `max(stampede_sim_attack_rps{${SEL}})`, legend: 'model attack' },
              { expr: `sum(rate(stampede_client_requests_total{${CLIENT},kind="junk"}[${R}]))`, legend: 'client junk' },
            ],
          },
        ],
      },
      {
        row: 'Error budget (Sloth-style slo:* series from dashboards/prometheus/rules)',
        panels: [
          {
            title: 'Error-budget burn rate (5m)',
            description: `1 = spending the 30-day budget exactly on time. Dashed lines: the alerts' burn-rate factors (${[...PAGE, ...TICKET].map((w) => `${w.factor}×`).join(', ')}).`,
            unit: 'short',
            log: true,
            thresholds: [
              { value: 1, color: 'yellow' },
              { value: 3, color: 'orange' },
              { value: 6, color: 'red' },
              { value: 14.4, color: 'dark-red' },
            ],
            targets: [{ expr: 'slo:current_burn_rate:ratio{sloth_service="stampede"}', legend: '{{sloth_slo}}' }],
          },
          {
            title: 'Error budget remaining (30d)',
            description: '1 = untouched, 0 = spent, below 0 = overspent.',
            unit: 'percentunit',
            thresholds: [{ value: 0, color: 'red' }],
            targets: [{ expr: 'slo:period_error_budget_remaining:ratio{sloth_service="stampede"}', legend: '{{sloth_slo}}' }],
          },
        ],
      },
    ],
  });
}
