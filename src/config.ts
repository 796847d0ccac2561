import { isIP } from 'node:net';
import { z } from 'zod';
import { zodIssues } from './protocol/issues.js';

/**
 * Every server default in one table; docs/architecture.md ("Server defaults") says why each is what it is.
 * The CLI reads flags and env into a partial object; parseServerConfig merges and validates it once.
 */
export const SERVER_DEFAULTS = {
  host: '127.0.0.1',
  port: 8080,
  /** Largest WebSocket message (reliability.md #1). Audio chunks are at most 16 KiB. */
  maxPayload: 64 * 1024,
  /** ws ≥ 8.21 fragment bounds (reliability.md #2): far below ws's defaults of 16384 / 262144. */
  maxFragments: 64,
  maxBufferedChunks: 256,
  /** Header bounds (reliability.md #7): Node answers 431 past them. */
  maxHeaderSize: 16 * 1024,
  maxHeadersCount: 64,
  maxBodyBytes: 16 * 1024,
  /** Slowloris (reliability.md #9): 408 when headers or the whole request take longer. */
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  keepAliveTimeoutMs: 5_000,
  /** Global and per-address caps on open connections, checked before the upgrade (reliability.md #13). */
  maxConnections: 20_000,
  maxConnectionsPerAddress: 10_000,
  /** Join admission (reliability.md #23): a token bucket on all join calls and one per address. */
  joinRatePerSecond: 2_000,
  joinBurst: 4_000,
  joinRatePerAddress: 20,
  joinBurstPerAddress: 40,
  /** Concurrent real listeners per space, unused tickets included (reliability.md #23). */
  maxListeners: 10_000,
  ticketTtlMs: 30_000,
  /** Unused tickets one address may hold at once, so it cannot hoard a space's places (reliability.md #23). */
  maxTicketsPerAddress: 50,
  /**
   * Load shedding (reliability.md #17, #22): event-loop lag (p99 of the loop-delay histogram, or the
   * sampler's own overshoot when the loop is too busy to sample), and memory: JS heap, RSS, and what
   * lives outside the heap (external + array buffers).
   */
  shedEventLoopLagMs: 250,
  shedHeapBytes: 2 * 1024 ** 3,
  shedRssBytes: 3 * 1024 ** 3,
  shedExternalBytes: 1024 ** 3,
  /** Lag read this soon after start does not shed (reliability.md #17): a fresh process is slow by nature. */
  shedWarmupMs: 2_000,
  retryAfterMs: 2_000,
  /** Heartbeat (reliability.md #11, #20): ping with a fresh payload; only a pong carrying it counts. */
  heartbeatMs: 15_000,
  /** Listener counts and reactions are coalesced on this tick (≤ 4 messages/s per space). */
  countIntervalMs: 250,
  /** Slow consumer (reliability.md #12): skip chunks past this buffer, close a listener behind this long. */
  skipBufferedBytes: 256 * 1024,
  slowConsumerMs: 5_000,
  /** Audio chunks per fan-out write: 1 writes each chunk as it comes; k > 1 holds k and writes them at once (an operating point the bench measures). */
  fanoutCoalesceChunks: 1,
  /** With `fanoutCoalesceChunks` > 1: the longest a held chunk waits for its write; past it, what is held goes out. */
  fanoutCoalesceMaxHoldMs: 500,
  /**
   * Fan-out pacing (reliability.md #15): a chunk's writes go out for at most `fanoutTurnMs` of time between
   * two of the fan-out's event-loop turns (and never more than `fanoutWritesPerTurn` writes), so a bigger
   * room's chunk is spread over turns: timers, joins and other spaces' audio run between them and the loop
   * never stalls on one chunk. An HTTP request that comes while a chunk goes out (a scrape, a join) waits
   * for the turn in progress, so the turn bounds that wait: at 2,000 listeners on air a scrape landing in a
   * chunk's fan-out took 8–14 ms with 4 ms turns and 4–6 ms with 1 ms, at the same CPU per chunk; 1 ms is
   * not the default: not shown safe for a crowd joining while audio flows (its one suite run, on a loaded
   * machine, failed two such load tests, one of which also failed once with 4 ms; docs/bench.md, /metrics).
   */
  fanoutTurnMs: 4,
  fanoutWritesPerTurn: 4_096,
  /**
   * A fan-out write to a listener with nothing queued goes straight to its socket's libuv handle, past Node's
   * Writable layer (`src/server/direct-write.ts`; anything queued, and a Node without the internals it
   * needs, takes `socket.write`). false: every write through `socket.write`.
   */
  fanoutDirectWrite: true,
  /**
   * Admission pacing (reliability.md #15): at most `admissionsPerTurn` joins and WebSocket upgrades, and
   * at most `admissionTurnMs` of them, between two of the admission queue's turns: a crowd arriving
   * together is taken over several turns. The count binds first on this machine (16 joins are about
   * 0.8 ms): paced by time alone, joins were admitted faster than their pipelined refusals were read, and
   * at 10× the HTTP maximum the loop stalled for seconds (docs/bench.md, session 9).
   */
  admissionTurnMs: 4,
  admissionsPerTurn: 16,
  /**
   * Within one event-loop turn that other work keeps long (a flood of refused joins), the admission queue
   * takes a fresh budget every `admissionRefreshTurns` × `admissionTurnMs`. In such a turn the count binds
   * (16 joins are about 1 ms), so the queue admits at most `admissionsPerTurn` per refresh: 4,000/s at 1,
   * 2,000/s at 2 — no margin over the default join rate, and below a higher one (at 2,500 joins/s, p99 of
   * admitted joins 3× longer than at 1); 1,333/s at 3 starved admissions (docs/bench.md, Graceful overload,
   * sessions 12 and 13). The bucket still bounds what is admitted; this bounds how long an admitted join waits.
   */
  admissionRefreshTurns: 1,
  /**
   * One bounded outbound path (reliability.md #19): no message of any kind is queued past this many
   * bytes for one connection; audio is skipped, a control message closes the connection with 4001.
   */
  maxOutboundBytes: 1024 * 1024,
  /** Ten bad client messages close the connection with 1008 (reliability.md #6). */
  maxBadMessages: 10,
  /**
   * Per-connection message rates (reliability.md #21): a token bucket per kind (messages per second,
   * burst). Excess is dropped and counted; a connection that keeps flooding past `abuse` drops is
   * closed with 1008. `any` is checked before a text message is decoded. Audio comes only from the
   * host, whose chunks must arrive in sequence; a listener's binary message is a bad message (#6).
   */
  messageRates: {
    any: { perSecond: 50, burst: 100 },
    ping: { perSecond: 5, burst: 10 },
    react: { perSecond: 10, burst: 20 },
    request_speak: { perSecond: 1, burst: 3 },
    grant_speak: { perSecond: 20, burst: 40 },
    abuse: { perSecond: 10, burst: 200 },
  },
  /** Graceful shutdown (reliability.md #16): requests during the drain get 503 + Retry-After (#25). */
  shutdownDeadlineMs: 10_000,
  closeBatchSize: 500,
  /** Most a real join is delayed to feel the modelled join-path latency. */
  maxModelledJoinDelayMs: 3_000,
  /**
   * Operator token for creating, starting and ending spaces (reliability.md #24); null = generate
   * one at start and print it. A space's host token also starts and ends that space.
   */
  operatorToken: null as string | null,
  /** Spaces that are not over (scheduled + live), and live ones (reliability.md #24). */
  maxSpaces: 1_000,
  maxLiveSpaces: 100,
  /** Ended spaces remembered for their details and recordings; the oldest are forgotten first. */
  maxEndedSpaces: 1_000,
  /** Largest page of `GET /api/v1/spaces` (reliability.md #24). */
  maxPageSize: 100,
  /** A live space with no host connected for this long ends (reliability.md #24). */
  hostGoneGraceMs: 120_000,
  /** The live windows of all spaces together hold at most this many bytes of audio (reliability.md #22). */
  liveWindowTotalBytes: 64 * 1024 ** 2,
  /** Where recordings go; null = a fresh temporary directory. */
  recordingDir: null as string | null,
  /** Bytes all recordings of this process may take on disk (reliability.md #24). */
  recordingQuotaBytes: 1024 ** 3,
  /**
   * Proxies whose X-Forwarded-For is believed (reliability.md #13): addresses or CIDR blocks; empty = trust
   * no one. From them the right-most hop that is not itself a trusted proxy is the client's address.
   */
  trustedProxies: [] as string[],
  /**
   * Browser origins (reliability.md #26) allowed to open WebSockets and to call the API across origins.
   * Empty = same origin and loopback pages only; '*' = any.
   */
  allowedOrigins: [] as string[],
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

/** `10.0.0.1`, `::1`, `10.0.0.0/8` or `fd00::/8`: what `trustedProxies` takes. */
function isAddressOrBlock(s: string): boolean {
  const [addr = '', bits, ...rest] = s.split('/');
  const v = isIP(addr);
  if (v === 0 || rest.length > 0) return false;
  return bits === undefined || (/^\d{1,3}$/.test(bits) && Number(bits) <= (v === 4 ? 32 : 128));
}
const nonNegative = z.number().int().min(0);
const rate = z.strictObject({ perSecond: z.number().positive(), burst: positive });

/** The message kinds a connection's rate limits are kept for; `abuse` meters the drops themselves. */
export const MESSAGE_RATE_KINDS = ['any', 'ping', 'react', 'request_speak', 'grant_speak', 'abuse'] as const;
export type MessageRateKind = (typeof MESSAGE_RATE_KINDS)[number];

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
  joinRatePerAddress: z.number().positive(),
  joinBurstPerAddress: positive,
  maxListeners: positive,
  ticketTtlMs: positive,
  maxTicketsPerAddress: positive,
  shedEventLoopLagMs: positive,
  shedWarmupMs: nonNegative,
  shedHeapBytes: positive,
  shedRssBytes: positive,
  shedExternalBytes: positive,
  retryAfterMs: positive,
  heartbeatMs: positive,
  countIntervalMs: positive,
  skipBufferedBytes: positive,
  slowConsumerMs: positive,
  fanoutCoalesceChunks: positive.max(50),
  fanoutTurnMs: z.number().positive().max(100),
  fanoutWritesPerTurn: positive,
  fanoutDirectWrite: z.boolean(),
  admissionTurnMs: z.number().positive().max(100),
  admissionsPerTurn: positive,
  admissionRefreshTurns: z.number().positive().max(100),
  fanoutCoalesceMaxHoldMs: positive.max(10_000),
  maxOutboundBytes: positive.min(64 * 1024),
  maxBadMessages: positive,
  messageRates: z.strictObject(Object.fromEntries(MESSAGE_RATE_KINDS.map((k) => [k, rate])) as Record<MessageRateKind, typeof rate>),
  shutdownDeadlineMs: positive,
  closeBatchSize: positive,
  maxModelledJoinDelayMs: nonNegative,
  operatorToken: z.string().regex(/^[A-Za-z0-9_-]{16,128}$/, 'expected 16 to 128 characters of A-Z a-z 0-9 _ -').nullable(),
  maxSpaces: positive,
  maxLiveSpaces: positive,
  maxEndedSpaces: positive,
  maxPageSize: positive.max(10_000),
  hostGoneGraceMs: positive,
  liveWindowTotalBytes: positive.min(16 * 1024 + 4),
  recordingDir: z.string().min(1).nullable(),
  recordingQuotaBytes: positive,
  trustedProxies: z.array(z.string().refine(isAddressOrBlock, 'expected an IP address or a CIDR block, e.g. 10.0.0.1 or 10.0.0.0/8')),
  allowedOrigins: z.array(z.union([z.literal('*'), z.url({ protocol: /^https?$/ })])),
  demoSpace: z.boolean(),
  chunkIntervalMs: positive,
  syntheticBitrate: z.number().int().min(6_000).max(510_000),
  redisUrl: z.string().regex(/^rediss?:\/\/[^\s]{1,250}$/, 'expected redis://host:port').nullable(),
  instanceId: z.string().regex(/^[A-Za-z0-9_-]{1,32}$/, 'letters, digits, _ and -, at most 32'),
  peerIntervalMs: positive,
  logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']),
})
  .refine((c) => c.requestTimeoutMs >= c.headersTimeoutMs, {
    message: 'requestTimeoutMs must be at least headersTimeoutMs',
    path: ['requestTimeoutMs'],
  })
  .refine((c) => c.skipBufferedBytes < c.maxOutboundBytes, {
    message: 'skipBufferedBytes must be below maxOutboundBytes: audio is skipped before the cap closes anyone',
    path: ['skipBufferedBytes'],
  });

export type ServerConfig = z.infer<typeof serverConfigSchema>;

export class ConfigError extends Error {
  readonly code = 'CONFIG_INVALID';
  constructor(readonly issues: { path: string; message: string }[]) {
    super(`invalid configuration: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`);
    this.name = 'ConfigError';
  }
}

/**
 * Per-address limits opened up for a crowd that really is many people but arrives from one loopback
 * address: the replay's real listeners, and the load, probe and soak commands' own servers.
 */
export const ONE_ADDRESS_CROWD = { joinRatePerAddress: 1e6, joinBurstPerAddress: 1_000_000, maxTicketsPerAddress: 1_000_000 } as const;
/** The same as `stampede serve --set key=value` arguments (for servers started as child processes). */
export const ONE_ADDRESS_CROWD_SETS = Object.entries(ONE_ADDRESS_CROWD).map(([k, v]) => `${k}=${v}`);

/** `key=value` settings as the arguments of `stampede serve`: `--set` before each. */
export function setArgs(sets: readonly string[]): string[] {
  return sets.flatMap((kv) => ['--set', kv]);
}

/** Server settings as a caller gives them: any subset, and any subset of the message rates. */
export type ServerConfigInput = Partial<Omit<ServerConfig, 'messageRates'>> & { messageRates?: Partial<ServerConfig['messageRates']> };

export function parseServerConfig(partial: ServerConfigInput = {}): ServerConfig {
  const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
  if (!isObject(partial)) throw new ConfigError([{ path: '(root)', message: 'expected an object of settings' }]);
  const rates = isObject(partial.messageRates) ? { ...SERVER_DEFAULTS.messageRates, ...partial.messageRates } : (partial.messageRates ?? SERVER_DEFAULTS.messageRates);
  const r = serverConfigSchema.safeParse({ ...SERVER_DEFAULTS, ...partial, messageRates: rates });
  if (!r.success) {
    throw new ConfigError(zodIssues(r.error, '(root)'));
  }
  return r.data;
}
