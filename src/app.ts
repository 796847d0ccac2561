import type { Logger } from 'pino';
import { systemClock, type Clock } from './clock.js';
import { parseServerConfig, type ServerConfig, type ServerConfigInput } from './config.js';
import { createLogger } from './logging.js';
import { createServerMetrics, type ServerMetrics } from './metrics/index.js';
import { RedisBus } from './cluster/redis-bus.js';
import { FaultInjector, LiveServer, type LoadSignal, type ReplayView } from './server/index.js';

export interface AppOptions {
  server?: ServerConfigInput;
  logger?: Logger;
  clock?: Clock;
  /** Uniform [0,1) source for the server's modelled join failures; seeded by the caller. */
  random?: () => number;
  loadSignal?: LoadSignal;
  newId?: () => string;
  /** A replay running over the server, which the server reads but never writes. */
  replay?: ReplayView;
  /**
   * Give the server a fault injector (`app.faults`), for `serve --faults` and replays with audio faults.
   * Off by default: the server then holds the null object and checks nothing per chunk. The number is
   * `random` decides which chunks a partial drop takes (seed it for repeatable runs).
   */
  faults?: { random: () => number };
}

export interface App {
  readonly config: ServerConfig;
  readonly logger: Logger;
  readonly metrics: ServerMetrics;
  readonly clock: Clock;
  readonly server: LiveServer;
  /** The fault injector, when asked for (`faults`) or in a cluster (`redisUrl`); null otherwise. */
  readonly faults: FaultInjector | null;
  /** Starts listening (and the demo space when configured); resolves to the base URL. */
  start(): Promise<string>;
  /** Drains and stops; idempotent. */
  stop(): Promise<void>;
}

/**
 * The composition root: config → logger → registry → server. Everything long-lived is created here
 * and passed in; nothing reads process state (the CLI does that and hands the results over).
 */
export function createApp(opts: AppOptions = {}): App {
  const config = parseServerConfig(opts.server);
  const logger = opts.logger ?? createLogger({ level: config.logLevel });
  const clock = opts.clock ?? systemClock();
  const metrics = createServerMetrics({ clock });
  // one process alone keeps the embedded bus; with Redis, instances share spaces, audio, counts and tickets
  const bus = config.redisUrl
    ? new RedisBus({
        url: config.redisUrl,
        instanceId: config.instanceId,
        logger,
        clock,
        events: {
          onUp: (again) => {
            metrics.clusterRedisUp.set(1);
            if (again) metrics.clusterRedisReconnects.inc();
          },
          onDown: () => metrics.clusterRedisUp.set(0),
        },
      })
    : undefined;
  // an instance of a cluster holds one too: a replay driving the cluster shares its audio faults, and the
  // listeners they are for are on the instances (docs/cluster.md)
  const faults = opts.faults || bus ? new FaultInjector(metrics, opts.faults?.random ?? opts.random ?? Math.random) : null;
  const server = new LiveServer({
    config,
    logger,
    metrics,
    clock,
    random: opts.random ?? Math.random,
    ...(opts.newId ? { newId: opts.newId } : {}),
    ...(opts.loadSignal ? { loadSignal: opts.loadSignal } : {}),
    ...(opts.replay ? { replay: opts.replay } : {}),
    ...(bus ? { bus } : {}),
    ...(faults ? { faults } : {}),
  });
  let stopping: Promise<void> | null = null;
  return {
    config,
    logger,
    metrics,
    clock,
    server,
    faults,
    async start() {
      const url = await server.start();
      if (config.demoSpace) {
        const { space } = server.createSpace({ title: 'Stampede demo space', scheduledStart: clock.now(), hostName: 'Synthetic host' });
        await server.startSpace(space, { syntheticHost: true });
      }
      return url;
    },
    stop() {
      faults?.endAll();
      stopping ??= server.stop();
      return stopping;
    },
  };
}
