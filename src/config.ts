import { z } from 'zod';
import { zodIssues } from './protocol/issues.js';

/**
 * Every server default in one table; docs/architecture.md ("Server defaults") says why each is what it is.
 * The CLI reads flags and env into a partial object; parseServerConfig merges and validates it once.
 */
export const SERVER_DEFAULTS = {
  host: '127.0.0.1',
  port: 8080,
  /** Largest WebSocket message. Audio chunks are at most 16 KiB. */
  maxPayload: 64 * 1024,
  /** ws ≥ 8.21 fragment bounds: far below ws's defaults of 16384 / 262144. */
  maxFragments: 64,
  maxBufferedChunks: 256,
  maxHeaderSize: 16 * 1024,
  maxHeadersCount: 64,
  maxBodyBytes: 16 * 1024,
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  keepAliveTimeoutMs: 5_000,
  /** Global and per-address caps on open connections, checked before the upgrade. */
  maxConnections: 20_000,
  maxConnectionsPerAddress: 10_000,
  /** Join admission: a token bucket on join calls and a cap on concurrent real listeners. */
  joinRatePerSecond: 2_000,
  joinBurst: 4_000,
  maxListeners: 10_000,
  ticketTtlMs: 30_000,
  /** Load shedding thresholds. */
  shedEventLoopLagMs: 250,
  shedHeapBytes: 2 * 1024 ** 3,
  retryAfterMs: 2_000,
  /** Heartbeat: ping each interval, terminate a peer that missed the previous pong. */
  heartbeatMs: 15_000,
  /** Listener counts and reactions are coalesced on this tick (≤ 4 messages/s per space). */
  countIntervalMs: 250,
  /** Backpressure: skip chunks past this buffer, close a listener behind this long. */
  skipBufferedBytes: 256 * 1024,
  slowConsumerMs: 5_000,
  /** Audio chunks per fan-out write: 1 writes each chunk as it comes; k > 1 holds k and writes them at once (an operating point the bench measures). */
  fanoutCoalesceChunks: 1,
  /** Ten bad client messages close the connection with 1008. */
  maxBadMessages: 10,
  /** Graceful shutdown. */
  shutdownDeadlineMs: 10_000,
  closeBatchSize: 500,
  /** Most a real join is delayed to feel the modelled join-path latency. */
  maxModelledJoinDelayMs: 3_000,
  /** Where recordings go; null = a fresh temporary directory. */
  recordingDir: null as string | null,
  /** Proxies whose X-Forwarded-For is believed; empty = trust no one. */
  trustedProxies: [] as string[],
  /** A demo space with a synthetic host is created at start (npm start, stampede serve). */
  demoSpace: true,
  /** Synthetic host cadence: a chunk every 100 ms, holding that much audio as 20 ms Opus frames. */
  chunkIntervalMs: 100,
  /** The synthetic voice's Opus bitrate: speech is clear at 24 kbps (about 60 bytes a frame). */
  syntheticBitrate: 24_000,
  /** Redis shared by several instances (`redis://host:port`); null = one process, nothing shared (the embedded default). */
  redisUrl: null as string | null,
  /** This instance's id in a cluster: its metrics target label, its entry in /api/v1/cluster. */
  instanceId: 'local',
  /** How often an instance tells the others its counts, spaces and status; a peer silent for 3 intervals is gone. */
  peerIntervalMs: 1_000,
  logLevel: 'info' as 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent',
};

const positive = z.number().int().positive();
const nonNegative = z.number().int().min(0);

export const serverConfigSchema = z.strictObject({
  host: z.string().min(1),
  port: z.number().int().min(0).max(65535),
  maxPayload: positive.max(16 * 1024 * 1024),
  maxFragments: positive,
  maxBufferedChunks: positive,
  maxHeaderSize: positive.min(1024),
  maxHeadersCount: positive,
  maxBodyBytes: positive,
  headersTimeoutMs: positive,
  requestTimeoutMs: positive,
  keepAliveTimeoutMs: positive,
  maxConnections: positive,
  maxConnectionsPerAddress: positive,
  joinRatePerSecond: z.number().positive(),
  joinBurst: positive,
  maxListeners: positive,
  ticketTtlMs: positive,
  shedEventLoopLagMs: positive,
  shedHeapBytes: positive,
  retryAfterMs: positive,
  heartbeatMs: positive,
  countIntervalMs: positive,
  skipBufferedBytes: positive,
  slowConsumerMs: positive,
  fanoutCoalesceChunks: positive.max(50),
  maxBadMessages: positive,
  shutdownDeadlineMs: positive,
  closeBatchSize: positive,
  maxModelledJoinDelayMs: nonNegative,
  recordingDir: z.string().min(1).nullable(),
  trustedProxies: z.array(z.string()),
  demoSpace: z.boolean(),
  chunkIntervalMs: positive,
  syntheticBitrate: z.number().int().min(6_000).max(510_000),
  redisUrl: z.string().regex(/^rediss?:\/\/[^\s]{1,250}$/, 'expected redis://host:port').nullable(),
  instanceId: z.string().regex(/^[A-Za-z0-9_-]{1,32}$/, 'letters, digits, _ and -, at most 32'),
  peerIntervalMs: positive,
  logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']),
}).refine((c) => c.requestTimeoutMs >= c.headersTimeoutMs, {
  message: 'requestTimeoutMs must be at least headersTimeoutMs',
  path: ['requestTimeoutMs'],
});

export type ServerConfig = z.infer<typeof serverConfigSchema>;

export class ConfigError extends Error {
  readonly code = 'CONFIG_INVALID';
  constructor(readonly issues: { path: string; message: string }[]) {
    super(`invalid configuration: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`);
    this.name = 'ConfigError';
  }
}

export function parseServerConfig(partial: Partial<ServerConfig> = {}): ServerConfig {
  const r = serverConfigSchema.safeParse({ ...SERVER_DEFAULTS, ...partial });
  if (!r.success) {
    throw new ConfigError(zodIssues(r.error, '(root)'));
  }
  return r.data;
}
