import { readdirSync, statSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { systemClock, type Clock } from '../clock.js';
import { PlainCounter, PlainHistogram } from './plain.js';

export { PlainCounter, PlainCounterChild, PlainHistogram, PlainHistogramChild } from './plain.js';

/**
 * Every metric Stampede's server publishes, created on one Registry per app (never the global one).
 * Label values come only from the closed sets below: never a space id, a client value or an error text.
 * docs/metrics.md is the reader's copy of this table; a test keeps the two in step.
 */
export const LISTENER_KINDS = ['real', 'virtual'] as const;
export type ListenerKind = (typeof LISTENER_KINDS)[number];

export const JOIN_OUTCOMES = [
  'admitted', // a ticket was issued (real) / the modelled join succeeded (virtual)
  'rate_limited', // refused by the join-rate limiter (429)
  'capacity', // refused by the concurrent-listener cap (503)
  'overloaded', // shed because the event loop lags or memory is over budget (503)
  'failed', // failed as the crowd model says the join path fails (503 / timeout)
  'draining', // refused because the server is shutting down (503)
  'rejected', // the request itself was wrong: unknown space, ended space, bad body (4xx)
] as const;
export type JoinOutcome = (typeof JOIN_OUTCOMES)[number];

export const STATUS_CLASSES = ['1xx', '2xx', '3xx', '4xx', '5xx'] as const;
export const ROUTES = [
  'list_spaces',
  'create_space',
  'get_space',
  'start_space',
  'end_space',
  'join',
  'recording',
  'playlist',
  'chunk',
  'replay',
  'cluster',
  'healthz',
  'readyz',
  'metrics',
  'page',
  'dashboard',
  'asset',
  'replay_timeline',
  'upgrade',
  'not_found',
] as const;
export type Route = (typeof ROUTES)[number];

export const DROP_REASONS = ['backpressure', 'slow_consumer_closed', 'duplicate'] as const;
/** How a fan-out write went: straight to the socket's handle and taken whole, straight to it and taken in part (the rest queued in libuv), or through `socket.write`. */
export const FANOUT_WRITE_PATHS = ['direct', 'direct_partial', 'stream'] as const;
/** Client message kinds a connection's rate limits drop (docs/reliability.md #21); `any` is the pre-decode limit. */
export const RATE_LIMITED_KINDS = ['any', 'ping', 'react', 'request_speak', 'grant_speak'] as const;
export const SIM_PHASES = ['pre_open', 'open', 'failing', 'live', 'ended'] as const;
export type SimPhase = (typeof SIM_PHASES)[number];
/** Kinds of event the crowd model reports (a mitigation's own name is scenario text, never a label). */
export const SIM_EVENTS = ['space_opened', 'join_path_failing', 'join_path_recovered', 'mitigation', 'host_started', 'host_ended', 'room_opened', 'room_crashed', 'room_ended'] as const;
export type SimEvent = (typeof SIM_EVENTS)[number];

/** The closed-set kind of one of the model's event texts ("space opened", "mitigation: admission cap", …). */
export function simEventKind(text: string): SimEvent | null {
  if (text.startsWith('mitigation')) return 'mitigation';
  // a timeline's later rooms and crashes: "room b opened (…)", "room a crashed: …", "room a ended: crashed", "room b: host ended", "room b: host X started"
  if (text.startsWith('room ')) {
    if (/^room \S+ opened/.test(text)) return 'room_opened';
    if (/^room \S+ crashed/.test(text)) return 'room_crashed';
    if (/^room \S+(:| ended)/.test(text)) return / started$/.test(text) ? 'host_started' : 'room_ended';
  }
  const kind = text.replaceAll(' ', '_');
  return (SIM_EVENTS as readonly string[]).includes(kind) ? (kind as SimEvent) : null;
}

export const HTTP_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
export const FANOUT_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1];

export interface ServerMetrics {
  registry: Registry;
  listeners: Gauge<'kind'>;
  /** Counted on every join: children that count in plain numbers (plain.ts). */
  joinAttempts: PlainCounter<'kind' | 'outcome'>;
  /** Observed on every request: children that count in plain numbers (plain.ts). */
  httpDuration: PlainHistogram<'route' | 'status_class'>;
  wsConnections: Gauge;
  wsCloses: Counter<'code'>;
  audioChunksSent: Counter;
  audioChunksDropped: Counter<'reason'>;
  fanoutDuration: Histogram;
  fanoutWrites: Counter<'path'>;
  eventLoopLag: Gauge;
  heartbeatTerminations: Counter;
  protocolErrors: Counter<'code'>;
  messagesDropped: Counter<'kind'>;
  outboundOverflows: Counter;
  recordingBytes: Counter;
  recordingFailures: Counter;
  recordingQuotaUsed: Gauge;
  recordingQuotaLimit: Gauge;
  liveWindowBytes: Gauge;
  liveWindowLimit: Gauge;
  faultsActive: Gauge<'kind'>;
  faultsInjected: Counter<'kind'>;
  spacesByState: Gauge<'state'>;
  simTime: Gauge;
  simPhase: Gauge<'phase'>;
  simOffered: Gauge;
  simAdmitted: Gauge;
  simAttack: Gauge;
  simAvailability: Gauge;
  simLatencyP99: Gauge;
  simLatencyP50: Gauge;
  simSpeed: Gauge;
  simEvents: Counter<'event'>;
  clusterPeers: Gauge;
  clusterRedisUp: Gauge;
  clusterRedisReconnects: Counter;
  clusterTakeovers: Counter;
}

export interface MetricsOptions {
  /** Include prom-client's default process and Node.js metrics (on by default). */
  defaultMetrics?: boolean;
  prefix?: string;
  /** What `process_open_fds` measures its refresh interval by; the system clock when not given. */
  clock?: Clock;
  /**
   * Whether `process_open_fds` reads the count as the size of /proc/self/fd (Linux 6.2 and later give the
   * number of open descriptors there) instead of listing the directory; by default, when the kernel does.
   */
  openFdsBySize?: boolean;
}

/**
 * prom-client default metrics left out: with thousands of listeners, listing every active handle and
 * resource on each scrape was about 40% of the scrape's CPU (docs/metrics.md).
 */
export const PER_SOCKET_DEFAULTS = ['nodejs_active_handles', 'nodejs_active_handles_total', 'nodejs_active_resources', 'nodejs_active_resources_total'] as const;

/** How often `process_open_fds` lists /proc/self/fd at most (docs/metrics.md). */
export const OPEN_FDS_REFRESH_MS = 1_000;

/** Whether this kernel gives the number of open descriptors as the size of /proc/self/fd (Linux 6.2 and later; 0 before). */
function fdDirSizeCounts(): boolean {
  try {
    return statSync('/proc/self/fd').size > 0;
  } catch {
    return false;
  }
}

/**
 * `process_open_fds` as prom-client names it, without listing /proc/self/fd on the scrape: that listing
 * grows with every listener's socket (with 2,000 listeners it was the whole difference between a busy and
 * an idle scrape; even fs.promises.readdir holds the event loop 1.4–3 ms while it starts the listing of 2,000).
 * Where the kernel gives the count as the directory's size (`bySize`), every scrape reads it with one
 * stat, whatever the count. Elsewhere the first scrape lists it; after that a scrape reports the last
 * count and, when that is older than OPEN_FDS_REFRESH_MS, lists it again off the main thread.
 */
function openFdsGauge(registry: Registry, clock: Clock, bySize: boolean): void {
  if (process.platform !== 'linux') return;
  const dir = '/proc/self/fd';
  registry.removeSingleMetric('process_open_fds');
  if (bySize) {
    new Gauge({
      name: 'process_open_fds',
      help: 'Number of open file descriptors.',
      registers: [registry],
      collect() {
        try {
          this.set(statSync(dir).size);
        } catch {
          // no /proc: the gauge keeps its last value
        }
      },
    });
    return;
  }
  let count = -1;
  let at = 0;
  let listing = false;
  new Gauge({
    name: 'process_open_fds',
    help: `Number of open file descriptors (counted at most every ${OPEN_FDS_REFRESH_MS / 1000} s, in the background).`,
    registers: [registry],
    collect() {
      if (count < 0) {
        try {
          // minus the descriptor the listing itself held
          count = readdirSync(dir).length - 1;
          at = clock.now();
        } catch {
          return;
        }
      } else if (!listing && clock.now() - at >= OPEN_FDS_REFRESH_MS) {
        listing = true;
        readdir(dir).then(
          (fds) => {
            count = fds.length - 1;
            at = clock.now();
            listing = false;
          },
          () => (listing = false),
        );
      }
      this.set(count);
    },
  });
}

export function createServerMetrics(opts: MetricsOptions = {}): ServerMetrics {
  const registry = new Registry();
  if (opts.defaultMetrics !== false) {
    collectDefaultMetrics({ register: registry });
    // these walk every handle (every listener's socket) on every scrape; stampede_ws_connections counts the sockets
    for (const name of PER_SOCKET_DEFAULTS) registry.removeSingleMetric(name);
    openFdsGauge(registry, opts.clock ?? systemClock(), opts.openFdsBySize ?? fdDirSizeCounts());
  }
  const p = opts.prefix ?? 'stampede_';
  const r = [registry];
  const m: ServerMetrics = {
    registry,
    listeners: new Gauge({ name: `${p}listeners`, help: 'Listeners in live or scheduled spaces, by population', labelNames: ['kind'], registers: r }),
    joinAttempts: new PlainCounter(`${p}join_attempts_total`, 'Join attempts by population and outcome', ['kind', 'outcome'], r),
    httpDuration: new PlainHistogram(`${p}http_request_duration_seconds`, 'HTTP request duration by route and status class', ['route', 'status_class'], HTTP_BUCKETS, r),
    wsConnections: new Gauge({ name: `${p}ws_connections`, help: 'Open WebSocket connections', registers: r }),
    wsCloses: new Counter({ name: `${p}ws_closes_total`, help: 'WebSocket closes by close code', labelNames: ['code'], registers: r }),
    audioChunksSent: new Counter({ name: `${p}audio_chunks_sent_total`, help: 'Audio chunks handed to listener sockets', registers: r }),
    audioChunksDropped: new Counter({ name: `${p}audio_chunks_dropped_total`, help: 'Audio chunks skipped for a listener, by reason', labelNames: ['reason'], registers: r }),
    fanoutDuration: new Histogram({ name: `${p}fanout_duration_seconds`, help: 'Time to fan one audio chunk out to every listener of a space', buckets: FANOUT_BUCKETS, registers: r }),
    fanoutWrites: new Counter({ name: `${p}fanout_writes_total`, help: 'Audio fan-out writes to listener sockets, by path (straight to the socket handle, whole or in part, or through socket.write)', labelNames: ['path'], registers: r }),
    eventLoopLag: new Gauge({ name: `${p}event_loop_lag_seconds`, help: 'Event-loop lag used for load shedding: the p99 delay of the last sampling window or the sampler\'s own drift, whichever is larger', registers: r }),
    heartbeatTerminations: new Counter({ name: `${p}heartbeat_terminations_total`, help: 'Connections terminated for a missed pong', registers: r }),
    protocolErrors: new Counter({ name: `${p}protocol_errors_total`, help: 'Rejected client messages by error code', labelNames: ['code'], registers: r }),
    messagesDropped: new Counter({ name: `${p}ws_messages_dropped_total`, help: 'Client messages dropped by the per-connection rate limits, by kind', labelNames: ['kind'], registers: r }),
    outboundOverflows: new Counter({ name: `${p}ws_outbound_overflows_total`, help: 'Connections closed (4001) because a message would have taken their outbound buffer past maxOutboundBytes', registers: r }),
    recordingBytes: new Counter({ name: `${p}recording_bytes_total`, help: 'Audio bytes written to recordings', registers: r }),
    recordingFailures: new Counter({ name: `${p}recording_failures_total`, help: 'Recordings whose file write failed (not published)', registers: r }),
    recordingQuotaUsed: new Gauge({ name: `${p}recording_quota_used_bytes`, help: 'Bytes of the recordings disk quota in use: what the directory held at start plus what this process wrote since', registers: r }),
    recordingQuotaLimit: new Gauge({ name: `${p}recording_quota_limit_bytes`, help: 'The recordings disk quota of this process (recordingQuotaBytes)', registers: r }),
    liveWindowBytes: new Gauge({ name: `${p}live_window_bytes`, help: 'Audio bytes the live windows of all spaces hold together', registers: r }),
    liveWindowLimit: new Gauge({ name: `${p}live_window_limit_bytes`, help: 'The bound on all live windows together (liveWindowTotalBytes)', registers: r }),
    faultsActive: new Gauge({ name: `${p}faults_active`, help: 'Injected faults in force, by kind (serve --faults, a replayed scenario)', labelNames: ['kind'], registers: r }),
    faultsInjected: new Counter({ name: `${p}faults_injected_total`, help: 'What injected faults did, by kind: chunks dropped, held or echoed, heartbeat rounds skipped, recordings failed', labelNames: ['kind'], registers: r }),
    spacesByState: new Gauge({ name: `${p}spaces`, help: 'Spaces by state', labelNames: ['state'], registers: r }),
    simTime: new Gauge({ name: `${p}sim_time_seconds`, help: 'Simulated wall-clock time of the replay (Unix seconds)', registers: r }),
    simPhase: new Gauge({ name: `${p}sim_phase`, help: '1 for the replay phase in force, 0 for the others', labelNames: ['phase'], registers: r }),
    simOffered: new Gauge({ name: `${p}sim_offered_rps`, help: 'Modelled offered load on the join path (requests per simulated second, attack included)', registers: r }),
    simAdmitted: new Gauge({ name: `${p}sim_admitted_rps`, help: 'Modelled successful joins per simulated second', registers: r }),
    simAttack: new Gauge({ name: `${p}sim_attack_rps`, help: 'Modelled attack requests reaching the join path per simulated second', registers: r }),
    simAvailability: new Gauge({ name: `${p}sim_join_availability_ratio`, help: 'Modelled share of join attempts that succeed in the current step', registers: r }),
    simLatencyP99: new Gauge({ name: `${p}sim_join_latency_p99_seconds`, help: 'Modelled p99 latency of the join path', registers: r }),
    simLatencyP50: new Gauge({ name: `${p}sim_join_latency_p50_seconds`, help: 'Modelled p50 latency of the join path', registers: r }),
    simSpeed: new Gauge({ name: `${p}sim_speed_ratio`, help: 'Simulated seconds per wall-clock second (0 when no replay runs)', registers: r }),
    simEvents: new Counter({ name: `${p}sim_events_total`, help: 'Events of the replayed night by kind (space opened, join path failing/recovered, mitigation, host started/ended)', labelNames: ['event'], registers: r }),
    clusterPeers: new Gauge({ name: `${p}cluster_peers`, help: 'Other instances heard from within the last three intervals (0 without Redis)', registers: r }),
    clusterRedisUp: new Gauge({ name: `${p}cluster_redis_up`, help: '1 while the instance has Redis, 0 while it reconnects (absent meaning: no Redis configured, stays 0)', registers: r }),
    clusterRedisReconnects: new Counter({ name: `${p}cluster_redis_reconnects_total`, help: 'Times the instance got Redis back and resubscribed after losing it', registers: r }),
    clusterTakeovers: new Counter({ name: `${p}cluster_takeovers_total`, help: 'Live spaces this instance took over after their owner went silent', registers: r }),
  };
  for (const kind of LISTENER_KINDS) m.listeners.set({ kind }, 0);
  for (const kind of LISTENER_KINDS) for (const outcome of JOIN_OUTCOMES) m.joinAttempts.inc({ kind, outcome }, 0);
  for (const reason of DROP_REASONS) m.audioChunksDropped.inc({ reason }, 0);
  for (const path of FANOUT_WRITE_PATHS) m.fanoutWrites.inc({ path }, 0);
  for (const kind of RATE_LIMITED_KINDS) m.messagesDropped.inc({ kind }, 0);
  for (const phase of SIM_PHASES) m.simPhase.set({ phase }, 0);
  for (const event of SIM_EVENTS) m.simEvents.inc({ event }, 0);
  m.simSpeed.set(0);
  return m;
}

export function statusClass(status: number): (typeof STATUS_CLASSES)[number] {
  return STATUS_CLASSES[statusClassIndex(status)]!;
}

/** The place of a status's class in STATUS_CLASSES (below 200 is 1xx, 500 and above 5xx). */
export function statusClassIndex(status: number): number {
  return Math.min(5, Math.max(1, Math.floor(status / 100))) - 1;
}
