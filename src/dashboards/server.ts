import { SERVER_DEFAULTS } from '../config.js';
import { boardLink, dashboard, promAnnotation, SEL, type Dashboard, type PromAnnotation } from './builder.js';

export const SERVER_UID = 'stampede-server';
const OUTAGE_UID = 'stampede-outage';
const R = '$__rate_interval';

/**
 * What both boards mark on every panel: each replay phase change, each event of the night the model
 * reports (space opened, join path failing / recovered, mitigations, host started / ended), and the SLO
 * alerts while they fire.
 */
export function boardAnnotations(): PromAnnotation[] {
  return [
    promAnnotation(
      'Replay phase',
      'orange',
      `(stampede_sim_phase{${SEL}} == 1) and on (job, instance, phase) (changes(stampede_sim_phase{${SEL}}[$__rate_interval]) > 0)`,
      'phase: {{phase}}',
      '{{instance}} entered {{phase}}',
    ),
    promAnnotation('Replay events', 'purple', `changes(stampede_sim_events_total{${SEL}}[$__rate_interval]) > 0`, '{{event}}', '{{instance}}: {{event}}'),
    promAnnotation('SLO alerts', 'red', 'ALERTS{alertstate="firing",sloth_service="stampede"}', '{{alertname}}', '{{severity}}: {{sloth_slo}} burning its error budget'),
  ];
}

export function serverDashboard(): Dashboard {
  return dashboard({
    uid: SERVER_UID,
    title: 'Stampede — server health',
    description: 'Stampede processes: connections, audio fan-out, backpressure, event loop, memory, heartbeats, each instance of a cluster, and HTTP by route.',
    tags: ['stampede'],
    annotations: boardAnnotations(),
    links: [boardLink('Outage overview', OUTAGE_UID, 'The replay, the crowd, joins from both sides and the error budget')],
    rows: [
      {
        row: 'Connections',
        panels: [
          { title: 'WebSocket connections', description: 'Open sockets.', unit: 'short', w: 8, targets: [{ expr: `sum(stampede_ws_connections{${SEL}})`, legend: 'open' }] },
          { title: 'Listeners by kind', description: 'Real sockets and the modelled crowd.', unit: 'short', w: 8, targets: [{ expr: `sum by (kind) (stampede_listeners{${SEL}})`, legend: '{{kind}}' }] },
          { title: 'Spaces by state', description: 'Spaces known to the process.', unit: 'short', w: 8, targets: [{ expr: `sum by (state) (stampede_spaces{${SEL}})`, legend: '{{state}}' }] },
        ],
      },
      {
        row: 'Audio fan-out',
        panels: [
          {
            title: 'Fan-out time per chunk',
            description: 'Time to hand one chunk to every listener of a space.',
            unit: 's',
            targets: [0.5, 0.99].map((q) => ({ expr: `histogram_quantile(${q}, sum by (le) (rate(stampede_fanout_duration_seconds_bucket{${SEL}}[${R}])))`, legend: `p${q * 100}` })),
          },
          {
            title: 'Chunks sent and dropped',
            description: 'Chunks handed to sockets, and chunks skipped for listeners that fell behind, by reason.',
            unit: 'ops',
            targets: [
              { expr: `sum(rate(stampede_audio_chunks_sent_total{${SEL}}[${R}]))`, legend: 'sent' },
              { expr: `sum by (reason) (rate(stampede_audio_chunks_dropped_total{${SEL}}[${R}]))`, legend: 'dropped: {{reason}}' },
            ],
          },
        ],
      },
      {
        row: 'Process',
        panels: [
          {
            title: 'Event-loop lag',
            description: `The p99 delay shedding decides on (dashed: the default shed threshold, ${SERVER_DEFAULTS.shedEventLoopLagMs} ms), and prom-client's own view.`,
            unit: 's',
            w: 8,
            thresholds: [{ value: SERVER_DEFAULTS.shedEventLoopLagMs / 1000, color: 'red' }],
            targets: [
              { expr: `max(stampede_event_loop_lag_seconds{${SEL}})`, legend: 'shedding signal' },
              { expr: `max(nodejs_eventloop_lag_p99_seconds{${SEL}})`, legend: 'nodejs p99' },
            ],
          },
          {
            title: 'Memory',
            description: 'Resident set and V8 heap (dashed: shedding starts at this much heap by default).',
            unit: 'bytes',
            w: 8,
            thresholds: [{ value: SERVER_DEFAULTS.shedHeapBytes, color: 'red' }],
            targets: [
              { expr: `sum(process_resident_memory_bytes{${SEL}})`, legend: 'rss' },
              { expr: `sum(nodejs_heap_size_used_bytes{${SEL}})`, legend: 'heap used' },
            ],
          },
          {
            title: 'Heartbeat terminations',
            description: 'Connections terminated for a missed pong, per second.',
            unit: 'ops',
            w: 8,
            targets: [{ expr: `sum(rate(stampede_heartbeat_terminations_total{${SEL}}[${R}]))`, legend: 'terminated' }],
          },
        ],
      },
      {
        // one line per instance: a `stampede cluster` (file_sd labels them i1, i2, …) or any set of processes scraped by one job
        row: 'Per instance',
        panels: [
          { title: 'Real listeners per instance', description: 'Listeners connected to each instance (behind haproxy, leastconn spreads them).', unit: 'short', w: 8, targets: [{ expr: `sum by (instance) (stampede_listeners{${SEL},kind="real"})`, legend: '{{instance}}' }] },
          { title: 'Chunks sent per instance', description: 'Audio chunks each instance hands to its own listeners, per second: with Redis every instance fans out every chunk of a space.', unit: 'ops', w: 8, targets: [{ expr: `sum by (instance) (rate(stampede_audio_chunks_sent_total{${SEL}}[${R}]))`, legend: '{{instance}}' }] },
          { title: 'Joins admitted per instance', description: 'Joins each instance admitted, per second (a ticket is redeemed on whichever instance the socket lands on).', unit: 'reqps', w: 8, targets: [{ expr: `sum by (instance) (rate(stampede_join_attempts_total{${SEL},outcome="admitted"}[${R}]))`, legend: '{{instance}}' }] },
          { title: 'Event-loop lag per instance', description: 'The p99 delay each instance sheds on: one hot instance shows here before it shows in the sums.', unit: 's', w: 8, targets: [{ expr: `max by (instance) (stampede_event_loop_lag_seconds{${SEL}})`, legend: '{{instance}}' }] },
          {
            title: 'Redis link and peers per instance',
            description: 'Per instance: 1 while it has Redis (0 while it reconnects, or alone without Redis), and the other instances it heard from.',
            unit: 'short',
            w: 8,
            targets: [
              { expr: `min by (instance) (stampede_cluster_redis_up{${SEL}})`, legend: '{{instance}} redis up' },
              { expr: `max by (instance) (stampede_cluster_peers{${SEL}})`, legend: '{{instance}} peers' },
            ],
          },
          {
            title: 'Takeovers and Redis reconnects',
            description: 'Spaces an instance took over after their owner went silent, and times it got Redis back, over the last 5 minutes.',
            unit: 'short',
            w: 8,
            targets: [
              { expr: `sum by (instance) (increase(stampede_cluster_takeovers_total{${SEL}}[5m]))`, legend: '{{instance}} takeovers' },
              { expr: `sum by (instance) (increase(stampede_cluster_redis_reconnects_total{${SEL}}[5m]))`, legend: '{{instance}} reconnects' },
            ],
          },
        ],
      },
      {
        row: 'HTTP',
        panels: [
          {
            title: 'HTTP requests by route',
            description: 'Requests per second by route and status class.',
            unit: 'reqps',
            stack: true,
            targets: [{ expr: `sum by (route, status_class) (rate(stampede_http_request_duration_seconds_count{${SEL}}[${R}]))`, legend: '{{route}} {{status_class}}' }],
          },
          {
            title: 'HTTP p99 by route',
            description: 'p99 request duration by route.',
            unit: 's',
            targets: [{ expr: `histogram_quantile(0.99, sum by (route, le) (rate(stampede_http_request_duration_seconds_bucket{${SEL}}[${R}])))`, legend: '{{route}}' }],
          },
        ],
      },
    ],
  });
}
