import { mkdir } from 'node:fs/promises';
import { isIP } from 'node:net';
import { join, resolve } from 'node:path';
import type { Clock } from '../clock.js';
import { newToken } from '../guard/index.js';
import { startHaproxy, type RunningHaproxy } from './haproxy.js';
import { SupervisedProcess, freePort, httpAnswers, type Exit } from './process.js';
import { startRedisServer } from './redis.js';
import { prometheusTargets, writePrometheusTargets } from './targets.js';

export interface ClusterOptions {
  /** How many `stampede serve` processes (1–16). */
  instances: number;
  /** Logs, haproxy.cfg, the Prometheus targets file and the shared recordings go here. */
  dir: string;
  /** The command that runs Stampede, e.g. `[node, bin/stampede.js]`; the CLI passes its own. */
  stampede: string[];
  clock: Clock;
  host?: string;
  /** The proxy's port (0 = a free one); instances take the ports after it, or free ones when it is 0. */
  port: number;
  /** Each instance's log level (default info). */
  logLevel?: string;
  /** Only the first instance creates the demo space with a synthetic host (default true). */
  demo?: boolean;
  /**
   * More `serve` arguments for every instance. A load from one machine through the proxy is one address
   * to the instances: lift the per-address limits for it with `ONE_ADDRESS_CROWD_SETS` (src/config.ts).
   */
  serveArgs?: string[];
  /** haproxy's health-check interval (default 500 ms). */
  checkIntervalMs?: number;
  redisCommand?: string;
  haproxyCommand?: string;
  /** The operator token every instance shares (a space created through the proxy may land on any); default: a fresh one. */
  operatorToken?: string;
  /** The instances' environment (the CLI passes its own); the operator token is added to it. Default: none but the token. */
  env?: Record<string, string | undefined>;
}

/** The environment variable an instance reads its operator token from (src/cli/serve.ts reads it). */
const OPERATOR_TOKEN_ENV = 'STAMPEDE_OPERATOR_TOKEN';

export interface ClusterInstance {
  id: string;
  port: number;
  url: string;
  logFile: string;
  process: SupervisedProcess;
}

export const MAX_INSTANCES = 16;

/**
 * Redis, haproxy and N Stampede instances on loopback, each child in its own process group with its
 * own log file. start() brings them up in dependency order (Redis, instances, proxy) and stop() takes
 * them down in reverse, so listeners are drained by their instance (1001) before the proxy goes.
 */
export class Cluster {
  readonly dir: string;
  readonly instances: ClusterInstance[] = [];
  /** What creates spaces on every instance (`Authorization: Bearer <operatorToken>`). */
  readonly operatorToken: string;
  private redisProc: SupervisedProcess | null = null;
  private redisPort = 0;
  private proxy: RunningHaproxy | null = null;
  private stopping: Promise<void> | null = null;

  constructor(private readonly o: ClusterOptions) {
    if (!Number.isInteger(o.instances) || o.instances < 1 || o.instances > MAX_INSTANCES) {
      throw new Error(`CLUSTER_INVALID: --instances must be a whole number from 1 to ${MAX_INSTANCES}`);
    }
    this.dir = resolve(o.dir);
    this.operatorToken = o.operatorToken ?? newToken();
  }

  get host(): string {
    return this.o.host ?? '127.0.0.1';
  }

  /** The address the proxy reaches the instances from: the host they listen on (loopback for 0.0.0.0 / ::). */
  get proxyPeer(): string {
    const h = this.host;
    if (h === '::') return '::1';
    return isIP(h) && h !== '0.0.0.0' ? h : '127.0.0.1';
  }

  get proxyUrl(): string {
    return this.need(this.proxy, 'proxy').url;
  }

  get statsUrl(): string {
    return this.need(this.proxy, 'proxy').statsUrl;
  }

  get redisUrl(): string {
    return `redis://127.0.0.1:${this.redisPort}`;
  }

  get targetsFile(): string {
    return join(this.dir, 'prometheus-targets.json');
  }

  get recordingDir(): string {
    return join(this.dir, 'recordings');
  }

  private need<T>(v: T | null, what: string): T {
    if (!v) throw new Error(`the cluster's ${what} is not running`);
    return v;
  }

  async start(): Promise<void> {
    const { clock } = this.o;
    await mkdir(this.recordingDir, { recursive: true });
    try {
      const redis = await startRedisServer({ dir: this.dir, clock, ...(this.o.redisCommand ? { command: this.o.redisCommand } : {}) });
      this.redisProc = redis.process;
      this.redisPort = redis.port;
      const ports = await this.instancePorts();
      await Promise.all(ports.map((port, k) => this.startInstance(k + 1, port)));
      this.instances.sort((a, b) => a.id.localeCompare(b.id, 'en', { numeric: true }));
      await writePrometheusTargets(this.targetsFile, prometheusTargets(this.instances.map((i) => ({ id: i.id, address: `${this.host}:${i.port}` })), 'stampede'));
      this.proxy = await startHaproxy({
        dir: this.dir,
        host: this.host,
        port: this.o.port,
        clock,
        servers: this.instances.map((i) => ({ name: i.id, address: `${this.host}:${i.port}` })),
        ...(this.o.checkIntervalMs ? { checkIntervalMs: this.o.checkIntervalMs } : {}),
        ...(this.o.haproxyCommand ? { command: this.o.haproxyCommand } : {}),
      });
    } catch (err) {
      await this.stop();
      throw err;
    }
  }

  private async instancePorts(): Promise<number[]> {
    const n = this.o.instances;
    if (this.o.port) return Array.from({ length: n }, (_, k) => this.o.port + 1 + k);
    const ports = new Set<number>();
    while (ports.size < n) ports.add(await freePort(this.host));
    return [...ports];
  }

  /** The `serve` arguments of instance `k` (1-based). */
  serveArgs(k: number, port: number): string[] {
    const args = ['serve', '--host', this.host, '--port', String(port), '--redis', this.redisUrl, '--instance', `i${k}`, '--json-logs', '--log-level', this.o.logLevel ?? 'info', '--recording-dir', this.recordingDir];
    if (k > 1 || this.o.demo === false) args.push('--no-demo');
    // behind haproxy every connection comes from the proxy: its X-Forwarded-For names the client, so the
    // per-address limits count each client, not the whole crowd as one (docs/reliability.md #13)
    args.push('--set', `trustedProxies=${JSON.stringify([this.proxyPeer])}`);
    return [...args, ...(this.o.serveArgs ?? [])];
  }

  private async startInstance(k: number, port: number): Promise<void> {
    const [command, ...pre] = this.o.stampede;
    if (!command) throw new Error('CLUSTER_INVALID: no command to run Stampede');
    const id = `i${k}`;
    const url = `http://${this.host}:${port}`;
    const logFile = join(this.dir, `${id}.log`);
    const proc = new SupervisedProcess(
      { name: id, command, args: [...pre, ...this.serveArgs(k, port)], env: { ...this.o.env, [OPERATOR_TOKEN_ENV]: this.operatorToken }, logFile, ready: () => httpAnswers(`${url}/readyz`), readyTimeoutMs: 30_000 },
      this.o.clock,
    );
    this.instances.push({ id, port, url, logFile, process: proc });
    await proc.start();
  }

  instance(id: string): ClusterInstance {
    const i = this.instances.find((x) => x.id === id);
    if (!i) throw new Error(`no instance ${id}`);
    return i;
  }

  /** Fault injection: SIGKILL one instance (no drain). */
  async killInstance(id: string): Promise<Exit> {
    return this.instance(id).process.kill();
  }

  /** Starts a killed or stopped instance again, on its port with its arguments; it finds the cluster's spaces through Redis. */
  async restartInstance(id: string): Promise<void> {
    const old = this.instance(id);
    if (old.process.running) throw new Error(`instance ${id} is still running`);
    this.instances.splice(this.instances.indexOf(old), 1);
    await this.startInstance(Number(id.slice(1)), old.port);
    this.instances.sort((a, b) => a.id.localeCompare(b.id, 'en', { numeric: true }));
  }

  /** Fault injection: stops Redis and starts it again on the same port (nothing persisted). */
  async restartRedis(): Promise<void> {
    const old = this.need(this.redisProc, 'Redis');
    await old.stop();
    const redis = await startRedisServer({ dir: this.dir, clock: this.o.clock, port: this.redisPort, ...(this.o.redisCommand ? { command: this.o.redisCommand } : {}) });
    this.redisProc = redis.process;
  }

  /** The process ids of the instances (in order), the proxy and Redis, for a caller that reads their CPU time (the bench). */
  pids(): { instances: number[]; proxy: number | null; redis: number | null } {
    return { instances: this.instances.map((i) => i.process.pid ?? 0).filter((p) => p > 0), proxy: this.proxy?.process.pid ?? null, redis: this.redisProc?.pid ?? null };
  }

  /** Last resort when the CLI must exit at once (a second Ctrl-C): SIGKILL every child still running, synchronously. */
  killAllNow(): void {
    for (const p of [...this.instances.map((i) => i.process), this.proxy?.process, this.redisProc]) p?.killNow();
  }

  /** Instances drain first (their listeners get 1001 through the proxy), then the proxy, then Redis. Idempotent. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      await Promise.all(this.instances.map((i) => i.process.stop()));
      await this.proxy?.process.stop();
      await this.redisProc?.stop();
    })();
    return this.stopping;
  }
}
