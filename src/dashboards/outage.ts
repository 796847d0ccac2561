import { dashboard, phaseAnnotation, queryVariable, SEL, DATASOURCE, type Dashboard, type TargetSpec, type Variable } from './builder.js';

const R = '$__rate_interval';
/** Load-generator series come from another scrape job, picked by its own variable. */
const LOAD = 'job=~"$load_job"';

function quantiles(metric: string, filter: string, by: string, label: string, source: 'server' | 'client', qs = [0.5, 0.95, 0.99]): TargetSpec[] {
  return qs.map((q) => ({
    expr: `histogram_quantile(${q}, sum by (${by}) (rate(${metric}{${filter}}[${R}])))`,
    legend: `${label} p${Math.round(q * 100)}`,
    source,
  }));
}

const joinRate = (extra: string, by = ''): string => `sum${by ? ` by (${by})` : ''} (rate(stampede_join_attempts_total{${SEL}${extra}}[${R}]))`;

export function outageDashboard(): Dashboard {
  const d = dashboard({
    uid: 'stampede-outage',
    title: 'Stampede — outage overview',
    description: 'The 2024-08-12 replay as it unfolds: simulated clock and phase, the crowd, join availability and latency from the server and from clients, load, attack and error-budget burn.',
    tags: ['stampede', 'slo'],
    annotations: [phaseAnnotation()],
    rows: [
      {
        row: 'Replay',
        panels: [
          { kind: 'stat', title: 'Simulated clock', description: 'The replay clock (stampede_sim_time_seconds).', unit: 'dateTimeAsIso', w: 8, h: 4, targets: [{ expr: `max(stampede_sim_time_seconds{${SEL}}) * 1000`, legend: 'simulated time' }] },
          { kind: 'stat', title: 'Phase', description: 'The replay phase in force.', unit: 'none', w: 8, h: 4, targets: [{ expr: `max by (phase) (stampede_sim_phase{${SEL}}) == 1`, legend: '{{phase}}' }] },
          { kind: 'stat', title: 'Replay speed', description: 'Simulated seconds per wall second; 0 when no replay runs.', unit: 'none', w: 8, h: 4, targets: [{ expr: `max(stampede_sim_speed_ratio{${SEL}})`, legend: 'speed' }] },
        ],
      },
      {
        row: 'Crowd',
        panels: [
          { title: 'Listeners: real vs virtual', description: 'Real sockets and the modelled crowd, as the server counts them.', unit: 'short', w: 24, stack: true, targets: [{ expr: `sum by (kind) (stampede_listeners{${SEL}})`, legend: '{{kind}}' }] },
        ],
      },
      {
        row: 'Join availability',
        panels: [
          {
            title: 'Join availability — server view',
            description: 'Admitted share of join attempts (client mistakes — outcome="rejected" — excluded), overall and by population, next to the model.',
            unit: 'percentunit',
            min: 0,
            max: 1,
            targets: [
              { expr: `${joinRate(',outcome="admitted"')} / ${joinRate(',outcome!="rejected"')}`, legend: 'server: all joins' },
              { expr: `${joinRate(',outcome="admitted"', 'kind')} / ${joinRate(',outcome!="rejected"', 'kind')}`, legend: 'server: {{kind}}' },
              { expr: `avg(stampede_sim_join_availability_ratio{${SEL}})`, legend: 'model' },
            ],
          },
          {
            title: 'Join availability — client view',
            description: 'Share of the load generator\'s join requests that succeeded (timeouts and refusals count as failures).',
            unit: 'percentunit',
            min: 0,
            max: 1,
            targets: [
              {
                expr: `sum(rate(stampede_client_requests_total{${LOAD},kind="join",outcome="ok"}[${R}])) / sum(rate(stampede_client_requests_total{${LOAD},kind="join"}[${R}]))`,
                legend: 'clients',
                source: 'client',
              },
            ],
          },
          { title: 'Join outcomes', description: 'Join attempts per second by population and outcome.', unit: 'reqps', w: 24, stack: true, targets: [{ expr: joinRate('', 'kind, outcome'), legend: '{{kind}} {{outcome}}' }] },
        ],
      },
      {
        row: 'Join latency',
        panels: [
          {
            title: 'Join latency — model and server',
            description: 'Modelled join-path p50/p99 and the real join route\'s p50/p95/p99 from stampede_http_request_duration_seconds.',
            unit: 's',
            targets: [
              { expr: `max(stampede_sim_join_latency_p50_seconds{${SEL}})`, legend: 'model p50' },
              { expr: `max(stampede_sim_join_latency_p99_seconds{${SEL}})`, legend: 'model p99' },
              ...quantiles('stampede_http_request_duration_seconds_bucket', `${SEL},route="join"`, 'le', 'http join', 'server'),
            ],
          },
          {
            title: 'Join latency — client view',
            description: 'What the load generator measured, request sent to response read.',
            unit: 's',
            targets: quantiles('stampede_client_request_duration_seconds_bucket', `${LOAD},kind="join"`, 'le', 'client join', 'client'),
          },
          {
            title: 'Audio delay at clients',
            description: 'Time from a chunk\'s capture to its arrival at the load generator\'s listeners.',
            unit: 's',
            targets: quantiles('stampede_client_audio_delay_seconds_bucket', LOAD, 'le', 'audio delay', 'client', [0.5, 0.99]),
          },
          {
            title: 'Client requests by kind and outcome',
            description: 'Everything the load generator sent, including junk and WebSocket connects.',
            unit: 'reqps',
            stack: true,
            targets: [{ expr: `sum by (kind, outcome) (rate(stampede_client_requests_total{${LOAD}}[${R}]))`, legend: '{{kind}} {{outcome}}', source: 'client' }],
          },
        ],
      },
      {
        row: 'Load and attack',
        panels: [
          {
            title: 'Offered vs admitted',
            description: 'Modelled join-path load per simulated second, and real join calls per wall second.',
            unit: 'reqps',
            targets: [
              { expr: `max(stampede_sim_offered_rps{${SEL}})`, legend: 'model offered' },
              { expr: `max(stampede_sim_admitted_rps{${SEL}})`, legend: 'model admitted' },
              { expr: joinRate(',kind="real"'), legend: 'real offered' },
              { expr: joinRate(',kind="real",outcome="admitted"'), legend: 'real admitted' },
            ],
          },
          {
            title: 'Attack traffic',
            description: 'Modelled attack reaching the join path, and junk the load generator sent.',
            unit: 'reqps',
            targets: [
              { expr: `max(stampede_sim_attack_rps{${SEL}})`, legend: 'model attack' },
              { expr: `sum(rate(stampede_client_requests_total{${LOAD},kind="junk"}[${R}]))`, legend: 'client junk', source: 'client' },
            ],
          },
        ],
      },
      {
        row: 'Error budget (Sloth-style slo:* series from dashboards/prometheus/rules)',
        panels: [
          {
            title: 'Error-budget burn rate (5m)',
            description: '1 = spending the 30-day budget exactly on time; the page alert fires at 14.4 (1h) and 6 (6h).',
            unit: 'short',
            targets: [{ expr: 'slo:current_burn_rate:ratio{sloth_service="stampede"}', legend: '{{sloth_slo}}', source: 'rules' }],
          },
          {
            title: 'Error budget remaining (30d)',
            description: '1 = untouched, 0 = spent.',
            unit: 'percentunit',
            targets: [{ expr: 'slo:period_error_budget_remaining:ratio{sloth_service="stampede"}', legend: '{{sloth_slo}}', source: 'rules' }],
          },
        ],
      },
    ],
  });
  const loadJob: Variable = queryVariable('load_job', 'Load job', 'label_values(stampede_client_requests_total, job)');
  d.templating.list.push(loadJob);
  return d;
}
