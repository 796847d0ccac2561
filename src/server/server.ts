import { createReadStream } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { timingSafeEqual, randomBytes } from 'node:crypto';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { WebSocketServer } from 'ws';
import { z } from 'zod';
import type { Clock } from '../clock.js';
import type { ServerConfig } from '../config.js';
import { writeMetrics } from '../metrics/endpoint.js';
import { statusClass, type JoinOutcome, type Route, type ServerMetrics } from '../metrics/index.js';
import { ApiError, CLOSE } from '../protocol/index.js';
import { DomainError, SpaceStore, type Space } from '../space/index.js';
import { Shedder, TokenBucket, type LoadSignal } from './admission.js';
import { clientAddress, readJson, rejectUpgrade, sendError, sendJson } from './http-util.js';
import { Hub } from './hub.js';
import { EventLoopSignal } from './load-signal.js';
import { LISTENER_PAGE } from './page.js';
import { NO_REPLAY, type ReplayView } from './replay-view.js';
import { SyntheticHost } from './synthetic-host.js';
import { TicketBook } from './tickets.js';
import { LogThrottle } from '../logging.js';

export interface LiveServerDeps {
  config: ServerConfig;
  logger: Logger;
  metrics: ServerMetrics;
  clock: Clock;
  /** Uniform [0,1): decides modelled join failures. Seeded by the composition root. */
  random: () => number;
  /** Space id generator; defaults to random 8-byte hex ids. */
  newId?: () => string;
  /** Readings for load shedding; defaults to the real event loop and heap. */
  loadSignal?: LoadSignal;
  /** A replay running over this server, read-only; none by default. */
  replay?: ReplayView;
}

/** Real traffic seen on the join path since the server started, for the replay's model. */
export interface JoinCounters {
  attempts: number;
  admitted: number;
}

const createBody = z.strictObject({
  title: z.string().trim().min(1).max(200),
  scheduledStart: z.iso.datetime({ offset: true }),
  host: z.strictObject({ name: z.string().trim().min(1).max(64) }).optional(),
});
const joinBody = z.strictObject({ name: z.string().trim().min(1).max(64).optional() });

function issuesOf(err: z.ZodError): { path: string; message: string }[] {
  return err.issues.map((i) => ({ path: i.path.join('.') || '(body)', message: i.message }));
}

function tokenMatches(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

/**
 * The live-space server: node:http for the API, ws (noServer) for the control channel and audio on
 * the same port. Nothing listens until start(); stop() drains and is idempotent.
 */
export class LiveServer {
  readonly spaces: SpaceStore;
  private readonly http: Server;
  private readonly wss: WebSocketServer;
  private readonly hub: Hub;
  private readonly tickets: TicketBook;
  private readonly bucket: TokenBucket;
  private readonly shedder: Shedder;
  private readonly eventLoop: EventLoopSignal | null;
  private readonly hostTokens = new Map<string, string>();
  private readonly hosts = new Map<string, SyntheticHost>();
  private readonly log: Logger;
  private readonly throttle: LogThrottle;
  private readonly replay: ReplayView;
  private readonly counters: JoinCounters = { attempts: 0, admitted: 0 };
  private draining = false;
  private stopping: Promise<void> | null = null;
  private recordingDir = '';
  private nextRequestId = 1;
  private address: AddressInfo | null = null;

  constructor(private readonly deps: LiveServerDeps) {
    const { config, clock, logger } = deps;
    this.log = logger.child({ module: 'server' });
    this.replay = deps.replay ?? NO_REPLAY;
    this.throttle = new LogThrottle(() => clock.now());
    this.spaces = new SpaceStore(deps.newId ?? (() => randomBytes(8).toString('hex')));
    this.tickets = new TicketBook(config.ticketTtlMs);
    this.bucket = new TokenBucket(clock, config.joinRatePerSecond, config.joinBurst);
    this.eventLoop = deps.loadSignal ? null : new EventLoopSignal(clock, 500, (lag) => deps.metrics.eventLoopLag.set(lag / 1000));
    this.shedder = new Shedder(deps.loadSignal ?? this.eventLoop!, config.shedEventLoopLagMs, config.shedHeapBytes, (reason, lagMs, heapBytes) => {
      const at = { lagMs: Math.round(lagMs), heapMiB: Math.round(heapBytes / 2 ** 20), maxLagMs: config.shedEventLoopLagMs };
      if (reason) this.log.warn({ reason, ...at }, 'shedding load: new joins get 503 and new sockets 1013');
      else this.log.info(at, 'stopped shedding load');
    });
    this.hub = new Hub(config, clock, deps.metrics, logger.child({ module: 'hub' }), () => this.recordingDir, this.replay);
    this.http = createServer({
      maxHeaderSize: config.maxHeaderSize,
      headersTimeout: config.headersTimeoutMs,
      requestTimeout: config.requestTimeoutMs,
      keepAliveTimeout: config.keepAliveTimeoutMs,
      // Node enforces the two timeouts above only when it sweeps connections (every 30 s by default)
      connectionsCheckingInterval: Math.min(1_000, config.headersTimeoutMs),
    });
    this.http.maxHeadersCount = config.maxHeadersCount;
    this.http.maxConnections = config.maxConnections + 1_000;
    this.wss = new WebSocketServer({
      noServer: true,
      maxPayload: config.maxPayload,
      maxFragments: config.maxFragments,
      maxBufferedChunks: config.maxBufferedChunks,
      perMessageDeflate: false,
      skipUTF8Validation: false,
      clientTracking: false,
    } as ConstructorParameters<typeof WebSocketServer>[0]);
    this.http.on('request', (req, res) => void this.onRequest(req, res));
    this.http.on('upgrade', (req, socket, head) => this.onUpgrade(req, socket, head));
    this.http.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
      // Node's own limits (431 headers too large, 408 timeouts, 400 bad framing) end here
      const status = err.code === 'HPE_HEADER_OVERFLOW' ? 431 : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
      if (socket.writable) socket.end(`HTTP/1.1 ${status} ${status === 431 ? 'Request Header Fields Too Large' : status === 408 ? 'Request Timeout' : 'Bad Request'}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`);
      else socket.destroy();
    });
  }

  get url(): string {
    if (!this.address) throw new Error('the server is not listening');
    const host = this.address.family === 'IPv6' ? `[${this.address.address}]` : this.address.address;
    return `http://${host}:${this.address.port}`;
  }

  async start(): Promise<string> {
    const { config } = this.deps;
    this.recordingDir = config.recordingDir ?? (await mkdtemp(join(tmpdir(), 'stampede-rec-')));
    try {
      await new Promise<void>((resolve, reject) => {
        this.http.once('error', reject);
        this.http.listen(config.port, config.host, () => {
          this.http.off('error', reject);
          resolve();
        });
      });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EADDRINUSE') throw new Error(`${config.host}:${config.port} is already in use: stop what holds it, or pick another port (--port 0 takes any free one)`);
      if (code === 'EACCES') throw new Error(`not allowed to listen on ${config.host}:${config.port}: pick a port above 1023`);
      throw err;
    }
    // periodic work starts only once the port is ours, so a failed start leaves nothing running
    this.eventLoop?.start();
    this.hub.start();
    this.address = this.http.address() as AddressInfo;
    this.log.info({ url: this.url, recordingDir: this.recordingDir }, 'listening');
    return this.url;
  }

  /** Real join attempts and admissions since the server started (both only grow). */
  joinTotals(): Readonly<JoinCounters> {
    return { ...this.counters };
  }

  createSpace(input: { title: string; scheduledStart: number; hostName: string }): { space: Space; hostToken: string } {
    const space = this.spaces.create(input);
    const hostToken = randomBytes(24).toString('base64url');
    this.hostTokens.set(space.id, hostToken);
    this.publishSpaceStates();
    return { space, hostToken };
  }

  /** scheduled → live; with `syntheticHost` a built-in host starts sending audio. */
  async startSpace(space: Space, opts: { syntheticHost?: boolean } = {}): Promise<void> {
    space.start(this.deps.clock.now());
    this.publishSpaceStates();
    await this.hub.spaceLive(space);
    if (opts.syntheticHost) {
      const h = new SyntheticHost(this.deps.clock, space, (s, b) => this.hub.ingestAudio(s, b), this.deps.config);
      this.hosts.set(space.id, h);
      h.start();
    }
    this.log.info({ spaceId: space.id }, 'space live');
  }

  /** live → ended: listeners are closed with 4500 and the recording is published. */
  async endSpace(space: Space, closeCode: number = CLOSE.SPACE_ENDED): Promise<void> {
    space.end(this.deps.clock.now());
    this.publishSpaceStates();
    await this.hosts.get(space.id)?.stop();
    this.hosts.delete(space.id);
    await this.hub.spaceEnded(space, closeCode);
    this.log.info({ spaceId: space.id, chunks: space.chunks }, 'space ended');
  }

  private publishSpaceStates(): void {
    for (const [state, n] of Object.entries(this.spaces.countByState())) this.deps.metrics.spacesByState.set({ state }, n);
  }

  recordingReady(spaceId: string): boolean {
    return this.hub.recordingOf(spaceId)?.ready ?? false;
  }

  recordingPath(spaceId: string): string | null {
    const r = this.hub.recordingOf(spaceId);
    return r?.ready ? r.path : null;
  }

  private async onRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const t0 = performance.now();
    const given = req.headers['x-request-id'];
    const reqId = typeof given === 'string' && /^[A-Za-z0-9._-]{1,64}$/.test(given) ? given : `r${this.nextRequestId++}`;
    res.setHeader('x-request-id', reqId);
    let route: Route = 'not_found';
    res.once('finish', () => {
      const seconds = (performance.now() - t0) / 1000;
      this.deps.metrics.httpDuration.observe({ route, status_class: statusClass(res.statusCode) }, seconds);
      // a request line is debug (warn for a 5xx other than shedding); nothing is built when it would not be written
      const level = res.statusCode >= 500 && res.statusCode !== 503 ? 'warn' : 'debug';
      if (this.log.isLevelEnabled(level)) this.log[level]({ reqId, method: req.method, url: req.url?.slice(0, 200), status: res.statusCode, ms: Math.round(seconds * 1000) }, 'request');
    });
    try {
      const path = (req.url ?? '/').split('?')[0] ?? '/';
      const parts = path.split('/').filter(Boolean);
      const method = req.method ?? 'GET';
      const allow = (methods: string[]): void => {
        if (!methods.includes(method)) throw new ApiError('METHOD_NOT_ALLOWED', `${method} is not allowed on ${path}`, { allow: methods });
      };
      if (path === '/healthz') {
        route = 'healthz';
        allow(['GET', 'HEAD']);
        return sendJson(res, 200, { status: 'ok' });
      }
      if (path === '/readyz') {
        route = 'readyz';
        allow(['GET', 'HEAD']);
        const why = this.draining ? 'draining' : this.shedder.reason();
        return sendJson(res, why ? 503 : 200, { ready: !why, reason: why });
      }
      if (path === '/metrics') {
        route = 'metrics';
        allow(['GET']);
        return writeMetrics(this.deps.metrics.registry, res);
      }
      if (path === '/') {
        route = 'page';
        allow(['GET']);
        res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
        return void res.end(LISTENER_PAGE);
      }
      if (parts[0] === 'api' && parts[1] === 'v1') {
        if (parts.length === 3 && parts[2] === 'replay') {
          route = 'replay';
          allow(['GET']);
          return sendJson(res, 200, { v: 1, replay: this.replay.status() });
        }
        if (parts[2] === 'spaces' && parts.length === 3) {
          if (method === 'POST') {
            route = 'create_space';
            return await this.createSpaceRoute(req, res);
          }
          route = 'list_spaces';
          allow(['GET', 'POST']);
          return sendJson(res, 200, { v: 1, spaces: this.spaces.list().map((s) => this.view(s)) });
        }
        if (parts[2] === 'spaces' && parts.length >= 4 && parts.length <= 6) {
          const id = parts[3]!;
          const action = parts[4];
          route =
            parts.length === 6
              ? action === 'chunks' ? 'chunk' : 'not_found'
              : action === undefined ? 'get_space' : action === 'start' ? 'start_space' : action === 'end' ? 'end_space' : action === 'join' ? 'join' : action === 'recording' ? 'recording' : action === 'playlist' ? 'playlist' : 'not_found';
          if (route === 'not_found') throw new ApiError('NOT_FOUND', `no route ${method} ${path}`);
          allow(route === 'get_space' || route === 'recording' || route === 'playlist' || route === 'chunk' ? ['GET'] : ['POST']);
          const space = this.spaces.get(id);
          if (!space) {
            if (route === 'join') this.countJoin('rejected');
            throw new ApiError('SPACE_NOT_FOUND', `no space with id '${id.slice(0, 64)}'`);
          }
          switch (route) {
            case 'get_space':
              return sendJson(res, 200, { v: 1, space: this.view(space) });
            case 'start_space':
            case 'end_space':
              return await this.hostAction(req, res, space, route);
            case 'join':
              return await this.joinRoute(req, res, space);
            case 'recording':
              return this.recordingRoute(res, space);
            case 'playlist': {
              const w = this.hub.liveWindow(space);
              return sendJson(res, 200, { v: 1, state: space.state, first: w.first, last: w.last, chunkMs: this.deps.config.chunkIntervalMs }, { 'cache-control': 'max-age=1' });
            }
            case 'chunk': {
              const seq = /^\d{1,10}$/.test(parts[5]!) ? Number(parts[5]) : NaN;
              if (!Number.isSafeInteger(seq)) throw new ApiError('BAD_REQUEST', 'a chunk sequence number is a whole number');
              const buf = this.hub.chunk(space, seq);
              if (!buf) throw new ApiError('CHUNK_NOT_FOUND', `no chunk ${seq} in the live window`);
              res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(buf.length), 'cache-control': 'public, max-age=30, immutable' });
              return void res.end(buf);
            }
          }
        }
      }
      throw new ApiError('NOT_FOUND', `no route ${method} ${path.slice(0, 200)}`);
    } catch (err) {
      if (err instanceof ApiError) return sendError(res, err);
      if (err instanceof DomainError) {
        const code = err.code === 'SPACE_ENDED' ? 'SPACE_ENDED' : 'INVALID_TRANSITION';
        return sendError(res, new ApiError(code, err.message));
      }
      const suppressed = this.throttle.allow('request failed');
      if (suppressed !== null) this.log.error({ err, reqId, suppressed }, 'request failed');
      return sendError(res, new ApiError('INTERNAL'));
    }
  }

  private view(space: Space): ReturnType<Space['snapshot']> & { simTime: string | null } {
    return { ...space.snapshot(this.replay.modelledListeners(space.id)), simTime: this.replay.simTime() };
  }

  private async createSpaceRoute(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const parsed = createBody.safeParse(await readJson(req, this.deps.config.maxBodyBytes));
    if (!parsed.success) throw new ApiError('BAD_REQUEST', 'the space needs a title and an ISO 8601 scheduledStart', { issues: issuesOf(parsed.error) });
    const { space, hostToken } = this.createSpace({ title: parsed.data.title, scheduledStart: Date.parse(parsed.data.scheduledStart), hostName: parsed.data.host?.name ?? 'host' });
    sendJson(res, 201, { v: 1, space: this.view(space), hostToken });
  }

  private checkHost(header: string | undefined, spaceId: string): void {
    const m = /^Bearer ([A-Za-z0-9_-]{1,128})$/.exec(header ?? '');
    if (!m) throw new ApiError('UNAUTHORIZED');
    const expected = this.hostTokens.get(spaceId);
    if (!expected || !tokenMatches(m[1]!, expected)) throw new ApiError('FORBIDDEN');
  }

  private async hostAction(req: IncomingMessage, res: ServerResponse, space: Space, route: 'start_space' | 'end_space'): Promise<void> {
    this.checkHost(req.headers.authorization, space.id);
    const body = (await readJson(req, this.deps.config.maxBodyBytes)) as Record<string, unknown>;
    if (route === 'start_space') await this.startSpace(space, { syntheticHost: body.syntheticHost === true });
    else await this.endSpace(space);
    sendJson(res, 200, { v: 1, space: this.view(space) });
  }

  /** Counts a finished join attempt; attempts and admissions are counted together, when the outcome is known. */
  private countJoin(outcome: JoinOutcome): void {
    this.deps.metrics.joinAttempts.inc({ kind: 'real', outcome });
    if (outcome === 'rejected') return;
    this.counters.attempts++;
    if (outcome === 'admitted') this.counters.admitted++;
  }

  private refuseJoin(outcome: JoinOutcome, err: ApiError): never {
    this.countJoin(outcome);
    throw err;
  }

  private async joinRoute(req: IncomingMessage, res: ServerResponse, space: Space): Promise<void> {
    const { config, clock } = this.deps;
    const parsed = joinBody.safeParse(await readJson(req, config.maxBodyBytes).catch((e: unknown) => {
      this.countJoin('rejected');
      throw e;
    }));
    if (!parsed.success) this.refuseJoin('rejected', new ApiError('BAD_REQUEST', 'the join body may only hold a name', { issues: issuesOf(parsed.error) }));
    if (space.state === 'ended') this.refuseJoin('rejected', new ApiError('SPACE_ENDED'));
    const retryAfterMs = config.retryAfterMs;
    if (this.draining) this.refuseJoin('draining', new ApiError('DRAINING', undefined, { retryAfterMs }));
    const shed = this.shedder.reason();
    if (shed) this.refuseJoin('overloaded', new ApiError('OVERLOADED', `the server is shedding load (${shed.replace(/_/g, ' ')})`, { retryAfterMs }));
    const token = this.bucket.take();
    if (!token.ok) this.refuseJoin('rate_limited', new ApiError('RATE_LIMITED', undefined, { retryAfterMs: Math.max(1000, token.retryAfterMs) }));
    if (space.realListeners + this.tickets.pendingFor(space.id, clock.now()) >= config.maxListeners) {
      this.refuseJoin('capacity', new ApiError('CAPACITY', `the space is at its cap of ${config.maxListeners} listeners`, { retryAfterMs }));
    }
    const gate = this.replay.joinGate();
    const delay = Math.min(gate.latencyMs, config.maxModelledJoinDelayMs);
    if (delay > 0) await clock.sleep(delay);
    if (gate.availability < 1 && this.deps.random() >= gate.availability) {
      this.refuseJoin('failed', new ApiError('JOIN_FAILED', undefined, { retryAfterMs }));
    }
    const name = parsed.data?.name ?? 'listener';
    const { ticket, expiresAt } = this.tickets.issue(space.id, name, clock.now());
    this.countJoin('admitted');
    const host = req.headers.host && /^[A-Za-z0-9.:[\]-]{1,255}$/.test(req.headers.host) ? req.headers.host : `${this.address?.address}:${this.address?.port}`;
    sendJson(res, 200, { v: 1, ticket, expiresAt: new Date(expiresAt).toISOString(), role: 'listener', wsUrl: `ws://${host}/ws?ticket=${ticket}` });
  }

  private recordingRoute(res: ServerResponse, space: Space): void {
    const rec = this.hub.recordingOf(space.id);
    if (space.state !== 'ended' || !rec?.ready) throw new ApiError('RECORDING_NOT_READY');
    res.writeHead(200, {
      'content-type': 'application/octet-stream',
      'content-length': String(rec.bytes),
      'x-stampede-chunks': String(rec.chunks),
      'content-disposition': `attachment; filename="${space.id}.rec"`,
    });
    createReadStream(rec.path).on('error', () => res.destroy()).pipe(res);
  }

  private onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', () => socket.destroy());
    const t0 = performance.now();
    const refuse = (err: ApiError): void => {
      this.deps.metrics.httpDuration.observe({ route: 'upgrade', status_class: statusClass(err.status) }, (performance.now() - t0) / 1000);
      rejectUpgrade(socket, err);
    };
    const { config, clock } = this.deps;
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://x');
    } catch {
      return refuse(new ApiError('BAD_REQUEST', 'the upgrade URL is malformed'));
    }
    if (url.pathname !== '/ws') return refuse(new ApiError('NOT_FOUND', `no WebSocket endpoint at ${url.pathname.slice(0, 100)}`));
    if (this.draining) return refuse(new ApiError('DRAINING', undefined, { retryAfterMs: config.retryAfterMs }));
    const ip = clientAddress(req, config.trustedProxies);
    if (this.hub.connectionCount >= config.maxConnections) return refuse(new ApiError('OVERLOADED', 'the server is at its connection cap', { retryAfterMs: config.retryAfterMs }));
    if (this.hub.connectionsFrom(ip) >= config.maxConnectionsPerAddress) return refuse(new ApiError('TOO_MANY_CONNECTIONS', undefined, { retryAfterMs: config.retryAfterMs }));
    let space: Space | undefined;
    let role: 'host' | 'listener' = 'listener';
    let name = 'listener';
    const ticket = url.searchParams.get('ticket');
    const spaceId = url.searchParams.get('space');
    if (ticket !== null) {
      const t = this.tickets.take(ticket, clock.now());
      if (!t) return refuse(new ApiError('TICKET_INVALID'));
      space = this.spaces.get(t.spaceId);
      name = t.name;
    } else if (spaceId !== null) {
      space = this.spaces.get(spaceId);
      if (!space) return refuse(new ApiError('SPACE_NOT_FOUND', `no space with id '${spaceId.slice(0, 64)}'`));
      const token = url.searchParams.get('hostToken') ?? '';
      const expected = this.hostTokens.get(space.id);
      if (!expected || !tokenMatches(token, expected)) return refuse(new ApiError('FORBIDDEN'));
      role = 'host';
      name = space.hostName;
    } else {
      return refuse(new ApiError('TICKET_INVALID', 'connect with ?ticket=<ticket from a join>'));
    }
    if (!space) return refuse(new ApiError('SPACE_NOT_FOUND'));
    if (space.state === 'ended') return refuse(new ApiError('SPACE_ENDED'));
    const s = space;
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      this.deps.metrics.httpDuration.observe({ route: 'upgrade', status_class: '1xx' }, (performance.now() - t0) / 1000);
      const shed = this.shedder.reason();
      if (shed) {
        // browsers cannot read an HTTP status from a failed upgrade; 1013 with a hint they can read
        ws.close(CLOSE.TRY_AGAIN_LATER, `retry-after=${Math.ceil(config.retryAfterMs / 1000)}`);
        this.deps.metrics.wsCloses.inc({ code: String(CLOSE.TRY_AGAIN_LATER) });
        return;
      }
      this.hub.attach(ws, s, role, name, ip);
    });
  }

  /**
   * Graceful shutdown: readiness goes 503, no new connections, live spaces end (recordings flushed),
   * clients get 1001 in batches, stragglers are terminated at the deadline. Same promise on every call.
   */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      const { config } = this.deps;
      this.draining = true;
      this.log.info('draining');
      const closed = new Promise<void>((resolve) => this.http.close(() => resolve()));
      this.http.closeIdleConnections();
      for (const h of this.hosts.values()) await h.stop();
      this.hosts.clear();
      for (const space of this.spaces.list()) {
        if (space.state === 'live') await this.endSpace(space, CLOSE.GOING_AWAY);
      }
      await this.hub.closeAll(CLOSE.GOING_AWAY, 'server going away', config.shutdownDeadlineMs);
      this.http.closeAllConnections();
      await closed;
      await this.eventLoop?.stop();
      this.log.info('stopped');
    })();
    return this.stopping;
  }
}
