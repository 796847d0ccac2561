import { join } from 'node:path';
// a type only: ioredis (~94 ms to import) is loaded when a Redis URL is used, never by a serve without --redis
import type { Redis, RedisOptions } from 'ioredis';
import type { Logger } from 'pino';
import type { Clock } from '../clock.js';
import { SupervisedProcess, freePort } from './process.js';

/** Reconnect backoff to Redis: doubling from 50 ms, capped at 1 s, forever (an instance outlives a Redis restart). */
export function redisRetryDelayMs(attempt: number): number {
  return Math.min(1_000, 50 * 2 ** Math.min(attempt - 1, 5));
}

function options(name: string, extra: RedisOptions = {}): RedisOptions {
  return {
    connectionName: name,
    lazyConnect: true,
    retryStrategy: redisRetryDelayMs,
    // a command while Redis is away fails at once instead of queueing: live audio is not replayed late
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    autoResubscribe: true,
    ...extra,
  };
}

export interface RedisLinkEvents {
  /** The link lost Redis (once per outage). */
  onDown?: () => void;
  /** The link has Redis again; `resubscribed` is false on the first connect. */
  onUp?: (resubscribed: boolean) => void;
}

const HOLD_SCRIPT = `local v = redis.call('GET', KEYS[1])
if v == false or v == ARGV[1] then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 1 end
return 0`;

export class RedisError extends Error {
  readonly code = 'REDIS_UNREACHABLE';
  constructor(message: string) {
    super(`REDIS_UNREACHABLE: ${message}`);
    this.name = 'RedisError';
  }
}

/**
 * The ioredis adapter: one connection for commands and publishing, one for subscriptions (Redis
 * dedicates a subscribing connection). Both reconnect with backoff forever; the subscriber resubscribes
 * by itself and the link says so in the log and through `onUp(true)`. While Redis is away `publish`
 * returns false and the message is dropped, never queued.
 */
/** ioredis's client class, imported on first use. */
async function ioredis(): Promise<typeof Redis> {
  return (await import('ioredis')).Redis;
}

export class RedisLink {
  /** Both connections exist from `start()` on (ioredis is imported there). */
  private cmd: Redis | null = null;
  private sub: Redis | null = null;
  private readonly handlers = new Map<string, (payload: Buffer) => void>();
  private connectedOnce = false;
  private down = false;
  private stopping: Promise<void> | null = null;

  constructor(
    private readonly url: string,
    private readonly name: string,
    private readonly log: Logger,
    private readonly events: RedisLinkEvents = {},
  ) {}

  /** True while both connections are ready. */
  get up(): boolean {
    return this.cmd?.status === 'ready' && this.sub?.status === 'ready';
  }

  /** The command connection (there from `start()` on). */
  private get c(): Redis {
    if (!this.cmd) throw new RedisError('the Redis link is not started');
    return this.cmd;
  }

  /** Connects both connections; fails with REDIS_UNREACHABLE when Redis does not answer within `timeoutMs`. */
  async start(clock: Clock, timeoutMs = 5_000): Promise<void> {
    const Client = await ioredis();
    const cmd = (this.cmd = new Client(this.url, options(`${this.name}:cmd`)));
    const sub = (this.sub = new Client(this.url, options(`${this.name}:sub`)));
    for (const c of [cmd, sub]) {
      // ioredis reports each failed attempt as an error event; the state changes below are what we log
      c.on('error', (err: Error) => this.log.debug({ err: err.message }, 'redis connection error'));
      c.on('close', () => this.lost());
    }
    sub.on('ready', () => this.regained());
    sub.on('messageBuffer', (channel: Buffer, payload: Buffer) => this.handlers.get(channel.toString())?.(payload));
    const connect = Promise.all([cmd.connect(), sub.connect()]);
    connect.catch(() => undefined);
    const ctl = new AbortController();
    const timedOut = clock.sleep(timeoutMs, ctl.signal).then(() => !ctl.signal.aborted);
    const ok = await Promise.race([connect.then(() => true, () => false), timedOut.then(() => false)]);
    ctl.abort();
    if (!ok) {
      await this.stop();
      throw new RedisError(`no answer from Redis within ${timeoutMs} ms`);
    }
  }

  private lost(): void {
    if (!this.connectedOnce || this.down || this.stopping) return;
    this.down = true;
    this.log.warn('lost Redis: reconnecting with backoff; cross-instance messages are dropped until it is back');
    this.events.onDown?.();
  }

  private regained(): void {
    const again = this.connectedOnce;
    this.connectedOnce = true;
    this.down = false;
    if (again) this.log.info({ channels: this.handlers.size }, 'Redis is back: resubscribed');
    this.events.onUp?.(again);
  }

  /** Publishes to every subscriber; false (and nothing sent) while Redis is away. */
  publish(channel: string, payload: Buffer | string): boolean {
    if (this.cmd?.status !== 'ready') return false;
    this.cmd.publish(channel, payload).catch(() => undefined);
    return true;
  }

  /** One handler per channel; payloads arrive as Buffers in the order Redis delivers them. */
  async subscribe(channel: string, handler: (payload: Buffer) => void): Promise<void> {
    this.handlers.set(channel, handler);
    if (!this.sub) throw new RedisError('the Redis link is not started');
    await this.sub.subscribe(channel);
  }

  /** How many connections subscribe to `channel` (PUBSUB NUMSUB). */
  async subscribers(channel: string): Promise<number> {
    const r = (await this.c.pubsub('NUMSUB', channel)) as [string, number | string];
    return Number(r[1]);
  }

  /** SET key value PX ttl NX: true when the key was new. */
  async putOnce(key: string, value: string, ttlMs: number): Promise<boolean> {
    return (await this.c.set(key, value, 'PX', ttlMs, 'NX')) === 'OK';
  }

  /**
   * Renews `key` for `value` when it holds `value` or nothing (SET PX), and leaves it when it holds
   * anything else: one atomic script, so a lease taken over in the meantime is never stolen back.
   */
  async hold(key: string, value: string, ttlMs: number): Promise<boolean> {
    const r = await this.c.eval(HOLD_SCRIPT, 1, key, value, String(ttlMs));
    return r === 1;
  }

  /** GETDEL: the value, at most once across every instance. */
  async take(key: string): Promise<string | null> {
    return this.c.getdel(key);
  }

  /** SET key value PX ttl (overwrites). */
  async put(key: string, value: string, ttlMs: number): Promise<void> {
    await this.c.set(key, value, 'PX', ttlMs);
  }

  async get(key: string): Promise<string | null> {
    return this.c.get(key);
  }

  /** Values of every key under `prefix` (SCAN, never KEYS). */
  async getAll(prefix: string): Promise<string[]> {
    const keys: string[] = [];
    let cursor = '0';
    do {
      const [next, batch] = await this.c.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 200);
      cursor = next;
      keys.push(...batch);
    } while (cursor !== '0');
    if (!keys.length) return [];
    return (await this.c.mget(...keys)).filter((v): v is string => v !== null);
  }

  /** Closes both connections; idempotent. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      await Promise.all([this.cmd, this.sub].map((c) => (!c || c.status === 'end' ? undefined : c.quit().catch(() => c.disconnect()))));
    })();
    return this.stopping;
  }
}

/** True when Redis at host:port answers PING. */
export async function redisAnswers(port: number, host = '127.0.0.1'): Promise<boolean> {
  const Client = await ioredis();
  const c = new Client({ host, port, lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0, connectTimeout: 500 });
  c.on('error', () => undefined);
  try {
    await c.connect();
    return (await c.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    c.disconnect();
  }
}

export interface RedisServerOptions {
  dir: string;
  /** 0 = a free port. */
  port?: number;
  clock: Clock;
  command?: string;
}

/**
 * A loopback redis-server for the cluster: no persistence (space state lives in the instances and is
 * re-announced; tickets are short-lived), logging to `redis.log` in `dir`.
 */
export async function startRedisServer(opts: RedisServerOptions): Promise<{ process: SupervisedProcess; port: number; url: string }> {
  const port = opts.port || (await freePort());
  const proc = new SupervisedProcess(
    {
      name: 'redis',
      command: opts.command ?? 'redis-server',
      args: ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', opts.dir, '--protected-mode', 'yes', '--logfile', ''],
      logFile: join(opts.dir, 'redis.log'),
      ready: () => redisAnswers(port),
      stopTimeoutMs: 5_000,
    },
    opts.clock,
  );
  await proc.start();
  return { process: proc, port, url: `redis://127.0.0.1:${port}` };
}
