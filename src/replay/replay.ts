import type { Logger } from 'pino';
import { createApp, type App } from '../app.js';
import type { Clock } from '../clock.js';
import { ONE_ADDRESS_CROWD, type ServerConfig } from '../config.js';
import { createClientMetrics, MergedMetrics, runInWorkers, runScenario, ScenarioRun, type CrowdProfile, type KindStats, type SwarmCounts } from '../load/index.js';
import type { LoadSignal } from '../server/index.js';
import { createRng, demandQuantiles, runReplay, type ReplayResult, type ReplayStep, type Scenario } from '../sim/index.js';
import { delayWindow, timelineMeta } from './dashboard-feed.js';
import { ReplayFeed } from './feed.js';
import { LiveReplayPort, type AudioFaultWindow } from './live-port.js';
import { ReplayCluster, type ClusterRun, type ReplayClusterOptions } from './on-cluster.js';

export interface ReplayOptions {
  scenario: Scenario;
  seed: number;
  /** Simulated seconds per second of `clock`, or 'max' (never sleeps). */
  speed: number | 'max';
  clock: Clock;
  logger: Logger;
  /** Serve the replay live (HTTP API, WebSocket, /metrics) with these settings; omit to run the model alone. */
  server?: Partial<ServerConfig>;
  /** Load readings for the server's shedding; the real event loop by default. */
  loadSignal?: LoadSignal;
  /** Real WebSocket listeners that join through the live server, arriving as the modelled crowd does. */
  listeners?: number;
  /** Called after every simulated second. */
  onStep?: (step: ReplayStep) => void;
  /**
   * Keep the server up once the night is over (the model and the real listeners stop), so the
   * dashboard stays readable and the recording can be played, until stop().
   */
  keepServing?: boolean;
  /**
   * Run the night on a cluster (with `server`): Redis, haproxy on `server.port` and N `stampede serve`
   * instances; this replay's own server joins it over Redis as instance `replay`, owns the space and
   * publishes the model (modelled counts, simulated time, join gate) to every instance, and the real
   * listeners join through the proxy. docs/cluster.md, "A replay on the cluster".
   */
  cluster?: ReplayClusterOptions;
  /**
   * Spread the real listeners over load worker threads (`stampede load --workers`' machinery): each runs
   * every n-th listener on its own event loop and reports what it measured every 100 ms; their HDR
   * histograms are merged exactly. `entry` is the worker's composition root (src/cli/load-worker.ts).
   */
  workers?: { count: number; entry: URL };
}

export interface ReplayStarted {
  /** The live server's base URL and the replay's space, or null when the model runs alone. */
  url: string | null;
  spaceId: string | null;
  /** Real listeners that will join. */
  listeners: number;
  /** On a cluster: the proxy the real listeners join through, and each instance. */
  cluster?: { proxyUrl: string; redisUrl: string; dir: string; instances: { id: string; url: string; logFile: string }[] };
}

/** The real listeners so far, for a progress line. */
export interface RealCrowd {
  connected: number;
  admitted: number;
  attempts: number;
  /** How their sockets were closed, by close code (e.g. 4003 when a room crashed under them). */
  closes: Readonly<Record<string, number>>;
  /** Audio chunks heard, and chunks missing from the sequence they heard (a scenario's audio faults show here). */
  chunks: number;
  gaps: number;
}

/** What the real listeners measured over the night, every worker's share added (histograms merged, never averaged). */
export interface RealCrowdSummary extends SwarmCounts {
  /** Load worker threads they ran in (1: in this process). */
  workers: number;
  /** The most connected at once (with workers: the largest sum of their reports). */
  peakConnected: number;
  /** With workers: what each one's share did, in worker order. */
  perWorker: SwarmCounts[];
  join: { p50: number | null; p99: number | null };
  /** Capture → receipt delay of the audio chunks they heard, ms. */
  audio: { p50: number | null; p99: number | null; max: number | null };
}

export interface Replay {
  /** Starts the server (when serving), the real listeners and the model; resolves once all are running. */
  start(): Promise<ReplayStarted>;
  /** Resolves when the model has reached the scenario's end and everything has stopped; rejects if stop() came first. */
  readonly finished: Promise<ReplayResult>;
  /** The real listeners' counts, or null without them. */
  realCrowd(): RealCrowd | null;
  /** What the real listeners measured, once the night is over (null without them). */
  realCrowdSummary(): RealCrowdSummary | null;
  /** On a cluster, once the night is over: the instances and each one's share (null otherwise). */
  clusterRun(): ClusterRun | null;
  /** Last resort when the process must exit at once (a second Ctrl-C): SIGKILLs the cluster's children, synchronously. */
  killChildrenNow(): void;
  /** Stops the model, then the real listeners, then the server, then the cluster (in that order); idempotent. */
  stop(): Promise<void>;
}

/**
 * The replay's composition root: the one place that wires the app, the replay port, the real
 * listeners and the runner, and owns the order they stop in. Reads no process state.
 */
export function createReplay(o: ReplayOptions): Replay {
  const { scenario, clock, speed } = o;
  const rng = createRng(o.seed);
  const abort = new AbortController();
  let app: App | null = null;
  let port: LiveReplayPort | null = null;
  /** The real listeners: one WebSocket scenario, run here or in load workers, tallied the same way. */
  let crowd: ScenarioRun | null = null;
  let crowdRunning: Promise<void> | null = null;
  const crowdAbort = new AbortController();
  let cluster: ReplayCluster | null = null;
  let clusterRun: ClusterRun | null = null;
  let run: Promise<ReplayResult> | null = null;
  let stopping: Promise<void> | null = null;
  let resolveFinished!: (r: ReplayResult) => void;
  let rejectFinished!: (err: unknown) => void;
  const finished = new Promise<ReplayResult>((resolve, reject) => {
    resolveFinished = resolve;
    rejectFinished = reject;
  });
  // a caller that only stops (never awaits finished) must not see an unhandled rejection
  finished.catch(() => undefined);

  let quieting: Promise<void> | null = null;
  /** The model and the real listeners stop; the server keeps serving. */
  const quiet = (): Promise<void> => {
    quieting ??= (async () => {
      abort.abort();
      await run?.catch(() => undefined);
      crowdAbort.abort();
      await crowdRunning?.catch(() => undefined);
      if (cluster) clusterRun = await cluster.figures();
      port?.finish();
    })();
    return quieting;
  };
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      await quiet();
      await app?.stop();
      await cluster?.stop();
    })();
    return stopping;
  };

  // the scenario's audio faults, in simulated ms, for the server's fault injector
  const audioFaults: AudioFaultWindow[] = scenario.assumptions.audio.faults.map((f) => ({ room: f.room, from: scenario.at(f.from), to: scenario.at(f.to), chunkLoss: f.chunkLoss, stall: f.stall, duplicate: f.duplicate }));

  const NONE: SwarmCounts = { attempts: 0, admitted: 0, connected: 0, chunks: 0, gaps: 0, cutShort: 0, joinsAbandoned: 0, closes: {} };
  /** The real listeners' counts so far, every worker's latest report added. */
  const counts = (): SwarmCounts => crowd?.swarmCounts() ?? NONE;

  const start = async (): Promise<ReplayStarted> => {
    if (run) throw new Error('the replay has already started');
    try {
      return await begin();
    } catch (err) {
      await stop();
      throw err;
    }
  };

  const begin = async (): Promise<ReplayStarted> => {
    let started: ReplayStarted = { url: null, spaceId: null, listeners: 0 };
    if (o.server) {
      let server = o.server;
      if (o.cluster) {
        // the cluster takes the given port for its proxy; this replay's own server (the model's instance) takes a free one
        cluster = new ReplayCluster(o.cluster, clock, o.server.host ?? '127.0.0.1', o.server.port ?? 8080);
        await cluster.start();
        const c = cluster.cluster;
        server = { ...o.server, port: 0, redisUrl: c.redisUrl, instanceId: 'replay', recordingDir: c.recordingDir, operatorToken: c.operatorToken };
      }
      const feed = new ReplayFeed({
        scenarioName: scenario.event.name,
        scheduledStartMs: scenario.scheduledStartMs,
        speed,
        timeZone: scenario.event.timeZone,
        timeline: timelineMeta(scenario, speed),
        realAudioDelay: delayWindow(() => crowd?.stats[2]!.latency ?? null),
      });
      app = createApp({
        logger: o.logger,
        clock,
        random: rng.fork('server').next,
        // the real listeners are a crowd of many people on one loopback address: the per-address limits
        // (made against one client hoarding or flooding) would cap them at ~20 joins/s, and the night's own
        // admission is the model's verdict (docs/replay.md)
        server: { demoSpace: false, ...ONE_ADDRESS_CROWD, ...server },
        replay: feed,
        ...(o.loadSignal ? { loadSignal: o.loadSignal } : {}),
        ...(audioFaults.length > 0 ? { faults: { random: rng.fork('faults').next } } : {}),
      });
      const url = await app.start();
      port = new LiveReplayPort({
        server: app.server,
        metrics: app.metrics,
        feed,
        title: scenario.event.name,
        hostName: scenario.event.host,
        scheduledStartMs: scenario.scheduledStartMs,
        speed,
        room: scenario.event.room,
        timeZone: scenario.event.timeZone,
        // on a cluster the real clients join on the other instances: count their joins where they are made
        ...(cluster ? { realJoins: () => counts() } : {}),
        ...(app.faults && audioFaults.length > 0 ? { audioFaults: { injector: app.faults, windows: audioFaults } } : {}),
      });
      const livePort = port;
      const listeners = o.listeners ?? 0;
      started = { url, spaceId: port.space.id, listeners };
      let joinAt = url;
      if (cluster) {
        const c = cluster.cluster;
        await cluster.knowSpace(port.space.id);
        cluster.sample();
        joinAt = c.proxyUrl;
        started.cluster = { proxyUrl: c.proxyUrl, redisUrl: c.redisUrl, dir: c.dir, instances: c.instances.map((i) => ({ id: i.id, url: i.url, logFile: i.logFile })) };
      }
      if (listeners > 0) {
        // real clients arrive as the modelled crowd does, mapped from simulated to wall time
        const sp = speed === 'max' ? Infinity : speed;
        const profile: CrowdProfile = {
          kind: 'ws',
          name: 'real listeners',
          description: '',
          executor: 'arrival-rate',
          phases: [{ duration: 1, arrivalRate: 0 }],
          startTime: 0,
          tags: {},
          thresholds: [],
          timeoutMs: 10_000,
          arrivalsMs: demandQuantiles(scenario, listeners).map((t) => (t - scenario.replayFromMs) / sp),
          maxListeners: listeners,
          holdSeconds: 0,
          reconnect: 'jitter',
          backoffBaseMs: 250,
          backoffCapMs: 5_000,
          reactionsPerMinute: 1,
          dropAfterSeconds: 0,
        };
        crowd = new ScenarioRun(profile);
        // thrown out by a crash, they come back to wherever the conversation is now
        const follow = async (): Promise<string | null> => livePort.currentSpaceId();
        const w = o.workers;
        if (w && w.count > 1) {
          // what the real listeners see, on the server's /metrics under the load generator's names and
          // labels (merged from the workers' reports)
          const merged = new MergedMetrics();
          merged.showOn(app.metrics.registry);
          let began!: () => void;
          const ready = new Promise<void>((r) => (began = r));
          const plan = { name: 'replay', description: '', thresholds: [], scenarios: [profile] };
          const target = { target: joinAt, spaceId: port.space.id, clock, signal: crowdAbort.signal, onStart: () => began() };
          crowdRunning = runInWorkers([crowd], plan, { count: w.count, entry: w.entry, seed: o.seed, metrics: merged, reportEveryMs: 100, follow, ...target });
          // a worker that fails mid-night takes its share of the listeners with it: said, not fatal to the night
          crowdRunning.catch((err: unknown) => o.logger.error({ err }, 'a load worker of the real listeners failed'));
          // the model starts once every worker is ready, so no listener arrives late by a worker's start-up
          await Promise.race([ready, crowdRunning]);
        } else {
          crowdRunning = runScenario(crowd, {
            base: new URL(joinAt),
            spaceId: port.space.id,
            clock,
            random: rng.fork('crowd').next,
            // what the real listeners see, on the server's /metrics under the load generator's names and
            // labels: the dashboards' client-view panels have data during a replay with nothing else running
            metrics: createClientMetrics(app.metrics.registry),
            signal: crowdAbort.signal,
            t0: clock.now(),
            follow,
          });
        }
      }
    }
    run = runReplay({ scenario, seed: o.seed, speed, clock, ...(port ? { port } : {}), ...(o.onStep ? { onStep: o.onStep } : {}), signal: abort.signal });
    run.then(
      async (result) => {
        await (o.keepServing ? quiet() : stop());
        resolveFinished(result);
      },
      async (err: unknown) => {
        await stop();
        rejectFinished(err);
      },
    );
    return started;
  };

  return {
    start,
    finished,
    clusterRun: () => clusterRun,
    killChildrenNow: () => cluster?.killAllNow(),
    realCrowd: () => (crowd ? counts() : null),
    realCrowdSummary: () => {
      if (!crowd) return null;
      const [join, , audio] = crowd.stats as [KindStats, KindStats, KindStats];
      return {
        ...counts(),
        workers: o.workers?.count ?? 1,
        peakConnected: crowd.peak,
        perWorker: crowd.workerCounts(),
        join: { p50: join.percentile(50), p99: join.percentile(99) },
        audio: { p50: audio.percentile(50), p99: audio.percentile(99), max: audio.maxMs },
      };
    },
    stop,
  };
}
