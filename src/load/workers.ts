import { Worker } from 'node:worker_threads';
import { AggregatorRegistry, type Metric, type MetricObject, type MetricObjectWithValues, type MetricValue, type Registry } from 'prom-client';
import { nextSlot, type Clock } from '../clock.js';
import { isCrowd, type CrowdProfile, type LoadPlan, type LoadProfile, type Phase } from './profile.js';
import { createClientMetrics, type ClientMetrics, type KindDelta } from './results.js';
import { runScenario, ScenarioRun, swarmCounts, type SwarmCounts } from './scenario.js';

/**
 * Load from several worker threads (`stampede load --workers N`): each runs its share of every
 * scenario (1/N of the arrivals, connections, listeners and VUs) on its own event loop, and reports
 * once a second what it measured since its last report: counts and HDR histograms. The parent adds
 * them into one tally per scenario and kind, so percentiles come from the union of every worker's
 * latencies, never from averaging the workers' percentiles; thresholds, abortOnFail and the
 * per-second stream work on that union as they do in one process.
 */

/** What a worker is given (its workerData). */
export interface WorkerInput {
  index: number;
  /** The plan with this worker's share of each scenario, in the plan's order (an empty share: no phases). */
  part: LoadPlan;
  target: string;
  spaceId: string;
  seed: number;
  /** How often the worker reports (ms; 1,000 by default). A replay's model reads the real joins as they come. */
  reportEveryMs?: number;
  /** Listeners whose space ended ask the parent where the conversation is now (a replay's crowd). */
  follow?: boolean;
}

export interface ScenarioReport {
  /** The scenario's position in the plan. */
  index: number;
  kinds: KindDelta[];
  swarm: SwarmCounts | null;
  /** Seconds the scenario ran in this worker; in the last report only. */
  seconds?: number;
}

export type ToWorker = { type: 'go'; t0: number } | { type: 'stop' } | { type: 'here'; spaceId: string | null };
export type FromWorker =
  | { type: 'ready' }
  | { type: 'where' }
  | { type: 'report'; scenarios: ScenarioReport[]; metrics: MetricObjectWithValues<MetricValue<string>>[] }
  | { type: 'done'; scenarios: ScenarioReport[]; metrics: MetricObjectWithValues<MetricValue<string>>[] };

/** Worker `i`'s share of `total`, so that the shares of `n` workers add up to it. */
export function shareOf(total: number, n: number, i: number): number {
  return Math.floor(total / n) + (i < total % n ? 1 : 0);
}

function scalePhase(p: Phase, n: number): Phase {
  if ('pause' in p) return p;
  if ('rampTo' in p) return { ...p, arrivalRate: p.arrivalRate / n, rampTo: p.rampTo / n };
  return { ...p, arrivalRate: p.arrivalRate / n };
}

/** One worker's share of a scenario: rates divided by n, whole numbers (VUs, listeners, connections) split to add up. */
function shareOfScenario(s: LoadProfile, n: number, i: number): LoadProfile {
  const phases = s.phases.map((p) => scalePhase(p, n));
  const thresholds: LoadProfile['thresholds'] = []; // judged by the parent on the union
  if (isCrowd(s)) {
    // every n-th arrival, so each worker's share arrives over the whole night as the crowd does
    const arrivalsMs = s.arrivalsMs.filter((_, k) => k % n === i);
    const part: CrowdProfile = { ...s, thresholds, arrivalsMs, maxListeners: Math.max(1, shareOf(s.maxListeners, n, i)), phases: arrivalsMs.length > 0 ? phases : [] };
    return part;
  }
  if (s.executor === 'constant-vus') {
    const vus = shareOf(s.vus!, n, i);
    return { ...s, thresholds, vus, phases: vus > 0 ? phases : [] };
  }
  if (s.kind === 'http') return { ...s, thresholds, phases, connections: Math.max(1, shareOf(s.connections, n, i)) };
  const maxListeners = shareOf(s.maxListeners, n, i);
  return { ...s, thresholds, phases: maxListeners > 0 ? phases : [], maxListeners: Math.max(1, maxListeners) };
}

/** The plan worker `i` of `n` runs. */
export function partOfPlan(plan: LoadPlan, n: number, i: number): LoadPlan {
  return { ...plan, thresholds: [], scenarios: plan.scenarios.map((s) => shareOfScenario(s, n, i)) };
}

/** Where a worker sends its reports and hears go/stop (the worker side of a MessagePort). */
export interface WorkerPort {
  post(msg: FromWorker): void;
  onMessage(fn: (msg: ToWorker) => void): void;
}

/**
 * The worker's side: runs its share of every scenario from the parent's t0 and reports once a second
 * until every scenario has ended or the parent says stop; the last report carries each scenario's seconds.
 */
export async function runWorkerPart(input: WorkerInput, port: WorkerPort, deps: { clock: Clock; random: () => number; metrics: ClientMetrics }): Promise<void> {
  const { clock, metrics } = deps;
  const abort = new AbortController();
  // a replay's listeners thrown out of an ended room ask the parent where the conversation went (one question at a time)
  const asking: ((spaceId: string | null) => void)[] = [];
  const go = new Promise<number>((resolve) =>
    port.onMessage((msg) => {
      if (msg.type === 'go') resolve(msg.t0);
      else if (msg.type === 'here') for (const answer of asking.splice(0)) answer(msg.spaceId);
      else {
        abort.abort();
        for (const answer of asking.splice(0)) answer(null);
      }
    }),
  );
  const follow = (): Promise<string | null> =>
    new Promise((resolve) => {
      if (asking.push(resolve) === 1) port.post({ type: 'where' });
    });
  const every = input.reportEveryMs ?? 1000;
  port.post({ type: 'ready' });
  const t0 = await go;
  const runs = input.part.scenarios.flatMap((s, index) => (s.phases.length > 0 ? [{ index, run: new ScenarioRun(s) }] : []));
  const ctx = { base: new URL(input.target), spaceId: input.spaceId, clock, random: deps.random, metrics, signal: abort.signal, t0, ...(input.follow ? { follow } : {}) };
  let settled = false;
  const all = Promise.all(runs.map(({ run }) => runScenario(run, ctx))).finally(() => (settled = true));
  const reports = (last: boolean): ScenarioReport[] =>
    runs.map(({ index, run }) => ({ index, kinds: run.stats.map((s) => s.takeDelta()), swarm: run.swarm ? swarmCounts(run.swarm) : null, ...(last ? { seconds: run.seconds } : {}) }));
  const tick = new AbortController();
  void all.finally(() => tick.abort());
  // a report carries everything since the last one: the reports a stall made it miss are skipped, not sent back to back
  for (let n = 1; !settled; n = nextSlot(t0, every, n, clock.now())) {
    await clock.sleep(t0 + n * every - clock.now(), tick.signal);
    if (settled) break;
    port.post({ type: 'report', scenarios: reports(false), metrics: await metrics.registry.getMetricsAsJSON() });
  }
  await all;
  port.post({ type: 'done', scenarios: reports(true), metrics: await metrics.registry.getMetricsAsJSON() });
}

/**
 * The workers' client metrics as one scrape (prom-client's aggregation: counters and histogram buckets
 * added across workers, gauges summed), for --metrics-port while the load runs in workers.
 */
export class MergedMetrics {
  readonly contentType = AggregatorRegistry.PROMETHEUS_CONTENT_TYPE;
  private readonly latest = new Map<number, MetricObjectWithValues<MetricValue<string>>[]>();
  private merged: Registry | null = null;

  update(worker: number, metrics: MetricObjectWithValues<MetricValue<string>>[]): void {
    this.latest.set(worker, metrics);
    this.merged = null;
  }

  private aggregate(): Registry {
    return (this.merged ??= AggregatorRegistry.aggregate([...this.latest.values()]));
  }

  async metrics(): Promise<string> {
    if (this.latest.size === 0) return '';
    return this.aggregate().metrics();
  }

  /**
   * Shows the merged client metrics on another registry, under the names they have when the clients run
   * in that process (a replay's real listeners on its server's /metrics): each read from the workers'
   * latest reports at every scrape, zero until the first. The entries are what prom-client's own
   * aggregation registers (an object with a `get()`), so the cast only names that shape.
   */
  showOn(registry: Registry): void {
    for (const zero of createClientMetrics().registry.getMetricsAsArray() as unknown as Metric[]) {
      const { name, help, type, aggregator } = zero as unknown as MetricObject;
      registry.registerMetric({ name, help, type, aggregator, get: async () => (await this.aggregate().getSingleMetric(name)?.get()) ?? (await zero.get()) } as unknown as Metric);
    }
  }
}

export interface WorkersOptions {
  count: number;
  /** The worker's entry file (a composition root that calls runWorkerPart). */
  entry: URL;
  seed: number;
  metrics?: MergedMetrics;
  /** How often each worker reports (ms; 1,000 by default). */
  reportEveryMs?: number;
  /** Where the conversation is now, answered to a worker whose listeners' space ended (a replay's crowd). */
  follow?: () => Promise<string | null>;
}

/**
 * The parent's side: starts the workers with their shares of the plan, waits until every one is ready,
 * starts them together (t0 = now), and adds each report into `runs` (the plan's scenarios, in order).
 * Resolves once every worker is done; the signal tells them to stop early. A worker that fails stops the others.
 */
export async function runInWorkers(runs: readonly ScenarioRun[], plan: LoadPlan, o: WorkersOptions & { target: string; spaceId: string; clock: Clock; signal: AbortSignal; onStart: (t0: number) => void }): Promise<void> {
  const workers = Array.from({ length: o.count }, (_, index) => {
    const workerData: WorkerInput = {
      index,
      part: partOfPlan(plan, o.count, index),
      target: o.target,
      spaceId: o.spaceId,
      seed: o.seed,
      ...(o.reportEveryMs ? { reportEveryMs: o.reportEveryMs } : {}),
      ...(o.follow ? { follow: true } : {}),
    };
    return new Worker(o.entry, { workerData });
  });
  const absorb = (worker: number, msg: Extract<FromWorker, { scenarios: unknown }>): void => {
    for (const s of msg.scenarios) {
      const run = runs[s.index]!;
      s.kinds.forEach((d, k) => run.stats[k]!.absorb(d));
      if (s.swarm) run.report(worker, s.swarm);
      if (s.seconds !== undefined) run.seconds = Math.max(run.seconds, s.seconds);
    }
    o.metrics?.update(worker, msg.metrics);
  };
  let ready = 0;
  let allReady!: () => void;
  const readyAll = new Promise<void>((r) => (allReady = r));
  const finished = workers.map(
    (w, i) =>
      new Promise<void>((resolve, reject) => {
        let done = false;
        w.on('message', (msg: FromWorker) => {
          if (msg.type === 'ready') {
            if (++ready === workers.length) allReady();
          } else if (msg.type === 'where') {
            void o.follow?.().then(
              (spaceId) => w.postMessage({ type: 'here', spaceId } satisfies ToWorker),
              () => w.postMessage({ type: 'here', spaceId: null } satisfies ToWorker),
            );
          } else {
            absorb(i, msg);
            if (msg.type === 'done') {
              done = true;
              void w.terminate();
            }
          }
        });
        w.once('error', (err) => reject(new Error(`load worker ${i + 1} failed: ${err.message}`)));
        w.once('exit', (code) => (done ? resolve() : reject(new Error(`load worker ${i + 1} exited (${code}) before it finished`))));
      }),
  );
  const stop = (): void => workers.forEach((w) => w.postMessage({ type: 'stop' } satisfies ToWorker));
  o.signal.addEventListener('abort', stop, { once: true });
  try {
    await Promise.race([readyAll, Promise.all(finished)]);
    const t0 = o.clock.now();
    o.onStart(t0);
    workers.forEach((w) => w.postMessage({ type: 'go', t0 } satisfies ToWorker));
    if (o.signal.aborted) stop();
    await Promise.all(finished);
  } catch (err) {
    await Promise.all(workers.map((w) => w.terminate()));
    throw err;
  } finally {
    o.signal.removeEventListener('abort', stop);
  }
}
