import type { Clock } from '../clock.js';
import { Cluster, type ClusterInstance } from '../cluster/index.js';
import { ONE_ADDRESS_CROWD_SETS, setArgs } from '../config.js';

/** What a replay on a cluster needs besides the replay's own settings (the CLI passes its command and environment). */
export interface ReplayClusterOptions {
  /** `stampede serve` instances behind haproxy (2–16). */
  instances: number;
  /** Logs, haproxy.cfg, the Prometheus targets file and the shared recordings. */
  dir: string;
  /** The command that runs Stampede, e.g. `[node, bin/stampede.js]`. */
  stampede: string[];
  /** The instances' environment. */
  env?: Record<string, string | undefined>;
  /** The operator token every instance (and the replay's own) shares; default: a fresh one. */
  operatorToken?: string;
  /** Each instance's log level. */
  logLevel?: string;
}

/** One instance's share of the night, for the report. */
export interface InstanceFigures {
  id: string;
  /** The most real listeners GET /api/v1/cluster reported on it while the night ran. */
  peakListeners: number;
  /** Real joins it admitted (`stampede_join_attempts_total{kind="real",outcome="admitted"}`). */
  joinsAdmitted: number;
  /** Audio chunks it handed to its listeners' sockets (`stampede_audio_chunks_sent_total`). */
  chunksSent: number;
}

export interface ClusterRun {
  instances: number;
  proxyUrl: string;
  perInstance: InstanceFigures[];
}

/** A counter's value in a Prometheus text exposition (0 when absent). */
function counter(text: string, series: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line ? Number(line.slice(series.length + 1)) || 0 : 0;
}

/**
 * The cluster a replay runs the night on (src/cluster's Cluster: Redis, N instances, haproxy), and
 * what the replay reads from it as a client would: whether every instance knows the replay's space,
 * the listeners per instance through the proxy's GET /api/v1/cluster, each instance's /metrics.
 */
export class ReplayCluster {
  readonly cluster: Cluster;
  private readonly peaks = new Map<string, number>();
  private readonly abort = new AbortController();
  private sampling: Promise<void> | null = null;

  constructor(
    o: ReplayClusterOptions,
    private readonly clock: Clock,
    host: string,
    port: number,
  ) {
    this.cluster = new Cluster({
      instances: o.instances,
      dir: o.dir,
      stampede: o.stampede,
      clock,
      host,
      port,
      demo: false,
      // the real listeners reach the instances through the proxy as one address (see replay.ts)
      serveArgs: setArgs(ONE_ADDRESS_CROWD_SETS),
      ...(o.logLevel ? { logLevel: o.logLevel } : {}),
      ...(o.env ? { env: o.env } : {}),
      ...(o.operatorToken ? { operatorToken: o.operatorToken } : {}),
    });
  }

  get instances(): readonly ClusterInstance[] {
    return this.cluster.instances;
  }

  start(): Promise<void> {
    return this.cluster.start();
  }

  /** Resolves once every instance answers the space (it heard the announcement over Redis), so no real join meets a 404. */
  async knowSpace(spaceId: string, timeoutMs = 15_000): Promise<void> {
    const until = this.clock.now() + timeoutMs;
    for (const i of this.cluster.instances) {
      for (;;) {
        const res = await fetch(`${i.url}/api/v1/spaces/${spaceId}`).catch(() => null);
        await res?.body?.cancel();
        if (res?.ok) break;
        if (this.clock.now() > until) throw new Error(`instance ${i.id} did not learn the replay's space within ${timeoutMs} ms (see ${i.logFile})`);
        await this.clock.sleep(50);
      }
    }
  }

  /** Samples the listeners per instance through the proxy once a second until figures(). */
  sample(): void {
    this.sampling ??= (async () => {
      const { signal } = this.abort;
      while (!signal.aborted) {
        const body = await fetch(`${this.cluster.proxyUrl}/api/v1/cluster`, { signal })
          .then((r) => r.json() as Promise<{ instances?: { id: string; listeners: number }[] }>)
          .catch(() => null);
        for (const i of body?.instances ?? []) this.peaks.set(i.id, Math.max(this.peaks.get(i.id) ?? 0, i.listeners));
        await this.clock.sleep(1_000, signal);
      }
    })();
  }

  /** Stops sampling and reads each instance's counters: call after the real listeners stopped, before stop(). Null if the night never began. */
  async figures(): Promise<ClusterRun | null> {
    if (!this.sampling) return null;
    this.abort.abort();
    await this.sampling;
    const perInstance = await Promise.all(
      this.cluster.instances.map(async (i): Promise<InstanceFigures> => {
        const text = await fetch(`${i.url}/metrics`)
          .then((r) => r.text())
          .catch(() => '');
        return { id: i.id, peakListeners: this.peaks.get(i.id) ?? 0, joinsAdmitted: counter(text, 'stampede_join_attempts_total{kind="real",outcome="admitted"}'), chunksSent: counter(text, 'stampede_audio_chunks_sent_total') };
      }),
    );
    return { instances: this.cluster.instances.length, proxyUrl: this.cluster.proxyUrl, perInstance };
  }

  stop(): Promise<void> {
    this.abort.abort();
    return this.cluster.stop();
  }

  killAllNow(): void {
    this.cluster.killAllNow();
  }
}
