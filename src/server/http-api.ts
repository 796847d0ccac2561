/**
 * Why one file (~330 lines): the HTTP API's handlers, one per row of its declarative route table, each
 * 5–40 lines, all inside one request envelope (request id, duration metric, coded error body) and one
 * space lookup. Split by route they would share that envelope's state through parameters; what is a
 * decision on its own is already out (`join-admission.ts`, `host-auth.ts`, `routes.ts`).
 */
import { createReadStream } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import type { Clock } from '../clock.js';
import type { ServerConfig } from '../config.js';
import { LogThrottle } from '../logging.js';
import { writeMetrics } from '../metrics/endpoint.js';
import { statusClass, statusClassIndex, type JoinOutcome, type PlainCounterChild, type PlainHistogramChild, type Route, type ServerMetrics } from '../metrics/index.js';
import { ApiError, createSpaceBody, hostActionBody, joinBody, listSpacesQuery, parseBody } from '../protocol/index.js';
import { DomainError, type Space, type SpaceStore } from '../space/index.js';
import type { JoinGate, Shedder, TokenBucket } from './admission.js';
import type { HostKeys } from './host-auth.js';
import { corsHeaders, originAllowed, type KeyedBuckets } from '../guard/index.js';
import { ApiResponse, ClientAborted, clientAddress, hasNoBody, readJson, sendError, sendJson, sendJsonBytes } from './http-util.js';
import type { Hub } from './hub.js';
import { decideJoin, failsUnderModel, modelledDelayMs } from './join-admission.js';
import { ASSET_TYPES, DASHBOARD_PAGE, loadDashboardAssets, type DashboardAssets } from './dashboard.js';
import { LISTENER_PAGE } from './page.js';
import type { ReplayView } from './replay-view.js';
import { RouteTable, type RouteDef } from './routes.js';
import type { TicketBook } from './tickets.js';

/** A space as the API shows it: its snapshot, the replay's clock and the recording's state. */
type SpaceView = ReturnType<Space['snapshot']> & { simTime: string | null; recordingReady: boolean; recordingLost: boolean };

/** Real traffic seen on the join path since the server started, for the replay's model. */
export interface JoinCounters {
  attempts: number;
  admitted: number;
}

/** What the HTTP API works with; the server builds these and owns their lifecycle. */
export interface HttpApiDeps {
  config: ServerConfig;
  clock: Clock;
  metrics: ServerMetrics;
  log: Logger;
  random: () => number;
  spaces: SpaceStore;
  hub: Hub;
  tickets: TicketBook;
  bucket: TokenBucket;
  /** The join rate of each client address (docs/reliability.md #23). */
  joinsPerAddress: KeyedBuckets;
  shedder: Shedder;
  hostKeys: HostKeys;
  replay: ReplayView;
  /** Puts a ticket where every instance can redeem it; undefined (nothing to wait for) with the embedded bus. */
  shareTicket: (ticket: string, t: { spaceId: string; name: string }, ttlMs: number) => Promise<void> | undefined;
  /** GET /api/v1/cluster: this instance's id and every instance's status. */
  cluster: () => Promise<Record<string, unknown>>;
  draining(): boolean;
  /** The host:port a join's wsUrl names when the request has no usable Host header. */
  listenAddress(): string;
  createSpace(input: { title: string; scheduledStart: number; hostName: string }): { space: Space; hostToken: string };
  startSpace(space: Space, opts: { syntheticHost?: boolean }): Promise<void>;
  endSpace(space: Space): Promise<void>;
}

/** refuseEarly answered the join (a 429 or 503). */
export const REFUSED = Symbol('refused');

const JOIN_PREFIX = '/api/v1/spaces/';
const JOIN_SUFFIX = '/join';

interface Ctx {
  req: IncomingMessage;
  res: ServerResponse;
}

/**
 * The HTTP API: a declarative route table, its handlers, and the request envelope (request id, metrics,
 * request log line, error mapping). Join admission decides in `join-admission.ts`; host actions are
 * authenticated by `HostKeys`; bodies are validated with the protocol's zod schemas.
 */
export class HttpApi {
  private readonly counters: JoinCounters = { attempts: 0, admitted: 0 };
  private readonly throttle: LogThrottle;
  private nextRequestId = 1;
  private readonly table: RouteTable<Ctx>;

  constructor(private readonly d: HttpApiDeps) {
    this.throttle = new LogThrottle(() => d.clock.now());
    const space = (fn: (ctx: Ctx, space: Space, params: Record<string, string>) => Promise<void> | void) => (ctx: Ctx, params: Record<string, string>) =>
      fn(ctx, this.spaceOf(params.id!), params);
    const routes: RouteDef<Ctx>[] = [
      { method: 'GET', head: true, path: '/healthz', route: 'healthz', handle: ({ res }) => sendJson(res, 200, { status: 'ok' }) },
      { method: 'GET', head: true, path: '/readyz', route: 'readyz', handle: ({ res }) => this.readyz(res) },
      { method: 'GET', path: '/metrics', route: 'metrics', handle: ({ res }) => this.metricsText(res) },
      { method: 'GET', path: '/', route: 'page', handle: ({ res }) => this.page(res) },
      { method: 'GET', path: '/dashboard', route: 'dashboard', handle: ({ res }) => this.html(res, DASHBOARD_PAGE) },
      { method: 'GET', path: '/assets/:name', route: 'asset', handle: ({ res }, p) => this.asset(res, p.name!) },
      { method: 'GET', path: '/api/v1/replay', route: 'replay', handle: ({ res }) => sendJson(res, 200, { v: 1, replay: d.replay.status() }) },
      { method: 'GET', path: '/api/v1/cluster', route: 'cluster', handle: async ({ res }) => sendJson(res, 200, { v: 1, ...(await d.cluster()) }) },
      { method: 'GET', path: '/api/v1/replay/timeline', route: 'replay_timeline', handle: ({ req, res }) => this.timeline(req, res) },
      { method: 'GET', path: '/api/v1/spaces', route: 'list_spaces', handle: (ctx) => this.listSpaces(ctx) },
      { method: 'POST', path: '/api/v1/spaces', route: 'create_space', handle: (ctx) => this.createSpace(ctx) },
      { method: 'GET', path: '/api/v1/spaces/:id', route: 'get_space', handle: space(({ res }, s) => this.details(res, s)) },
      { method: 'POST', path: '/api/v1/spaces/:id/start', route: 'start_space', handle: space((ctx, s) => this.hostAction(ctx, s, 'start')) },
      { method: 'POST', path: '/api/v1/spaces/:id/end', route: 'end_space', handle: space((ctx, s) => this.hostAction(ctx, s, 'end')) },
      { method: 'POST', path: '/api/v1/spaces/:id/join', route: 'join', handle: (ctx, p) => this.join(ctx, p.id!) },
      { method: 'GET', head: true, path: '/api/v1/spaces/:id/recording', route: 'recording', handle: space(({ req, res }, s) => this.recording(req, res, s)) },
      { method: 'GET', path: '/api/v1/spaces/:id/playlist', route: 'playlist', handle: space(({ res }, s) => this.playlist(res, s)) },
      { method: 'GET', path: '/api/v1/spaces/:id/chunks/:seq', route: 'chunk', handle: space(({ res }, s, p) => this.chunk(res, s, p.seq!)) },
    ];
    this.table = new RouteTable(routes);
  }

  /** The request-duration histogram's children of a route, one per status class (1xx … 5xx), looked up once and kept. */
  private readonly durations = new Map<Route, PlainHistogramChild[]>();
  private duration(route: Route, status: number): PlainHistogramChild {
    let byClass = this.durations.get(route);
    if (!byClass) this.durations.set(route, (byClass = []));
    return (byClass[statusClassIndex(status)] ??= this.d.metrics.httpDuration.labels({ route, status_class: statusClass(status) }));
  }

  /** Real join attempts and admissions since the server started (both only grow). */
  joinTotals(): Readonly<JoinCounters> {
    return { ...this.counters };
  }

  /** The client's request id when it gave a usable one, else the next of ours. */
  private requestId(req: IncomingMessage): string {
    const given = req.headers['x-request-id'];
    return typeof given === 'string' && /^[A-Za-z0-9._-]{1,64}$/.test(given) ? given : `r${this.nextRequestId++}`;
  }

  /** Joins let through the admission gate and not decided yet: each will take a token or be refused (refuseEarly). */
  private claims = 0;

  /** A join's claim on a token ends when it is decided, or answered without a decision (an error, the client gone). */
  private release(res: ServerResponse): void {
    const r = res as ApiResponse;
    if (r.claim !== true) return;
    r.claim = false;
    this.claims--;
  }

  /** Refusal answers of the early path, built once per code and Retry-After. */
  private readonly refusals = new Map<string, { status: number; body: Buffer; retryAfter: string }>();

  /** A join (`POST /api/v1/spaces/<id>/join`): one of the requests a crowd sends at once, paced by the server. */
  static isJoin(req: IncomingMessage): boolean {
    const url = req.url;
    return req.method === 'POST' && !!url && url.startsWith(JOIN_PREFIX) && url.endsWith(JOIN_SUFFIX);
  }

  /**
   * Refuses a join the admission gate will not take before anything else is done with the request
   * (docs/reliability.md #17): no routing, no body, no JSON, no error object. It is decided on the raw
   * request: a POST to `/api/v1/spaces/<id>/join` of a space that is not over, on a server that is not
   * draining, while the server sheds load or the join rate is used up. The answer is the one the full path
   * gives — 503 `OVERLOADED` or 429 `RATE_LIMITED`, the same body, Retry-After and request id, counted the
   * same — and the connection stays open. Called for joins only (`isJoin`). Returns `REFUSED` when it
   * answered; otherwise the join goes on to the full path, which is given the space id read here (the
   * route is known: `handle` does not match it again), or undefined when the path holds no plain id.
   *
   * A join let through holds a claim on a token until it is decided (`claims`): while it waits in the
   * admission queue for a later turn, or for its body, it has not taken its token yet. Without counting
   * them, every join of a crowd that arrives while one token is left passes here, is queued, and takes
   * the full path, 16 a turn; under a 10× flood the queue then held every join (56,000 in 3 s) and
   * admitted ones waited seconds.
   */
  refuseEarly(req: IncomingMessage, res: ApiResponse): typeof REFUSED | string | undefined {
    const url = req.url!;
    const id = url.slice(JOIN_PREFIX.length, -JOIN_SUFFIX.length);
    if (!id || id.includes('/')) return undefined;
    const space = this.d.spaces.get(id);
    if (!space || space.state === 'ended' || this.d.draining()) return id;
    const t0 = performance.now();
    const shedding = this.d.shedder.reason();
    let outcome: JoinOutcome;
    let key: string;
    if (shedding) {
      outcome = 'overloaded';
      key = `OVERLOADED ${shedding} ${this.d.config.retryAfterMs}`;
    } else {
      const token = this.d.bucket.peek(this.claims);
      if (token.ok) {
        res.claim = true;
        this.claims++;
        return id;
      }
      outcome = 'rate_limited';
      key = `RATE_LIMITED ${Math.max(1000, token.retryAfterMs)}`;
    }
    let r = this.refusals.get(key);
    if (!r) {
      const [code, reason, ms] = key.split(' ') as ['OVERLOADED' | 'RATE_LIMITED', string, string | undefined];
      const err = code === 'OVERLOADED' ? new ApiError(code, `the server is shedding load (${reason.replace(/_/g, ' ')})`, { retryAfterMs: Number(ms) }) : new ApiError(code, undefined, { retryAfterMs: Number(reason) });
      r = { status: err.status, body: Buffer.from(JSON.stringify(err.body())), retryAfter: String(Math.max(1, Math.ceil(err.extra.retryAfterMs! / 1000))) };
      // a handful of keys at most (two codes, a few Retry-After values); bounded all the same
      if (this.refusals.size >= 64) this.refusals.clear();
      this.refusals.set(key, r);
    }
    const reqId = this.requestId(req);
    res.writeHead(r.status, ['x-request-id', reqId, 'content-type', 'application/json; charset=utf-8', 'content-length', String(r.body.length), 'cache-control', 'no-store', 'retry-after', r.retryAfter]);
    res.end(r.body);
    this.countJoin(outcome);
    this.count(req, res, t0, 'join', reqId);
    return REFUSED;
  }

  /**
   * One request, in its envelope. Most answers are written before this returns (no body to wait for, no
   * model delay, no cluster): they are counted right away. A promise comes back only from a handler that
   * waits; its answer is counted when the handler is done, and a streamed one when it finishes.
   */
  handle(req: IncomingMessage, res: ServerResponse, joinSpaceId?: string): Promise<void> | undefined {
    const t0 = performance.now();
    const reqId = this.requestId(req);
    // written with the answer's other headers, in its one writeHead (http-util.ts)
    if (res instanceof ApiResponse) res.requestId = reqId;
    else res.setHeader('x-request-id', reqId);
    let route: Route = 'not_found';
    let waiting: Promise<void> | void = undefined;
    try {
      const url = req.url ?? '/';
      const q = url.indexOf('?');
      const path = q < 0 ? url : url.slice(0, q);
      const method = req.method ?? 'GET';
      // the browser-facing policy (docs/reliability.md #26): a page from another site gets nothing;
      // an allowed one gets an explicit CORS answer for its own origin
      const origin = req.headers.origin;
      if (!originAllowed(origin, req.headers.host, this.d.config.allowedOrigins)) {
        throw new ApiError('ORIGIN_FORBIDDEN', `pages from ${String(origin).slice(0, 100)} may not use this server (allowedOrigins)`);
      }
      if (origin !== undefined) for (const [k, v] of Object.entries(corsHeaders(origin, method === 'OPTIONS'))) res.setHeader(k, v);
      // draining: the port stays open and says so (docs/reliability.md #25); health and metrics still answer
      if (this.d.draining() && path !== '/healthz' && path !== '/readyz' && path !== '/metrics') {
        res.setHeader('connection', 'close');
        if (path.endsWith('/join')) this.countJoin('draining');
        throw new ApiError('DRAINING', undefined, { retryAfterMs: this.d.config.retryAfterMs });
      }
      // a join refuseEarly has read the space id of: the route is known
      const m = joinSpaceId === undefined ? this.table.match(method, path) : null;
      if (m === null) {
        route = 'join';
        waiting = this.join({ req, res }, joinSpaceId!);
      } else if (method === 'OPTIONS' && m.kind === 'method_not_allowed') {
        // a CORS preflight (or a client asking what a route takes): the methods, nothing else
        route = m.route;
        res.writeHead(204, { allow: [...m.allow, 'OPTIONS'].join(', ') });
        res.end();
      } else {
        if (m.kind === 'not_found') throw new ApiError('NOT_FOUND', `no route ${method} ${path.slice(0, 200)}`);
        if (m.kind === 'method_not_allowed') {
          route = m.route;
          throw new ApiError('METHOD_NOT_ALLOWED', `${method} is not allowed on ${path.slice(0, 200)}`, { allow: m.allow });
        }
        route = m.def.route;
        waiting = m.def.handle({ req, res }, m.params);
      }
    } catch (err) {
      this.fail(err, req, res, reqId);
    }
    if (!waiting) return void this.finished(req, res, t0, route, reqId);
    const r = route;
    return waiting.then(
      () => this.finished(req, res, t0, r, reqId),
      (err: unknown) => {
        this.fail(err, req, res, reqId);
        this.finished(req, res, t0, r, reqId);
      },
    );
  }

  /** Maps what a handler threw to its coded answer. */
  private fail(err: unknown, req: IncomingMessage, res: ServerResponse, reqId: string): void {
    if (err instanceof ApiError) return sendError(res, err);
    if (err instanceof ClientAborted) {
      // the client went away mid-request: its business, not an error of ours
      this.d.log.debug({ reqId, method: req.method, url: req.url?.slice(0, 200) }, 'client aborted the request');
      return void res.destroy();
    }
    if (err instanceof DomainError) {
      const code = err.code === 'SPACE_ENDED' ? 'SPACE_ENDED' : 'INVALID_TRANSITION';
      return sendError(res, new ApiError(code, err.message));
    }
    const suppressed = this.throttle.allow('request failed');
    if (suppressed !== null) this.d.log.error({ err, reqId, suppressed }, 'request failed');
    return sendError(res, new ApiError('INTERNAL'));
  }

  /** Counts the request (duration histogram, request log line) once its answer is written; a streamed one when it finishes. */
  private finished(req: IncomingMessage, res: ServerResponse, t0: number, route: Route, reqId: string): void {
    this.release(res);
    if (!res.writableEnded) return void res.once('finish', () => this.count(req, res, t0, route, reqId));
    this.count(req, res, t0, route, reqId);
  }

  private count(req: IncomingMessage, res: ServerResponse, t0: number, route: Route, reqId: string): void {
    const seconds = (performance.now() - t0) / 1000;
    this.duration(route, res.statusCode).observe(seconds);
    // a request line is debug (warn for a 5xx other than shedding); nothing is built when it would not be written
    const level = res.statusCode >= 500 && res.statusCode !== 503 ? 'warn' : 'debug';
    if (this.d.log.isLevelEnabled(level)) this.d.log[level]({ reqId, method: req.method, url: req.url?.slice(0, 200), status: res.statusCode, ms: Math.round(seconds * 1000) }, 'request');
  }

  private spaceOf(id: string): Space {
    const space = this.d.spaces.get(id);
    if (!space) throw new ApiError('SPACE_NOT_FOUND', `no space with id '${id.slice(0, 64)}'`);
    return space;
  }

  private view(space: Space): SpaceView {
    const audio = this.d.hub.audio;
    return this.viewOf(space, this.d.replay.modelledListeners(space.id), this.d.replay.simTime(), audio.recordingReady(space), audio.recordingLost(space));
  }

  private viewOf(space: Space, modelled: number, simTime: string | null, recordingReady: boolean, recordingLost: boolean): SpaceView {
    // the snapshot is a fresh object: the view's fields go onto it (same order as a spread) instead of a copy
    return Object.assign(space.snapshot(modelled), { simTime, recordingReady, recordingLost });
  }

  /**
   * The body of `GET …/:id` (what every poller of a space asks for), kept per space and built again only
   * when something it shows has changed: the space's version (state, listeners, stage, chunks), the other
   * instances' counts, the modelled crowd, the replay's clock or the recording's state.
   */
  private readonly detailsCache = new WeakMap<Space, { version: number; peersReal: number; peersVirtual: number; modelled: number; simTime: string | null; ready: boolean; lost: boolean; body: Buffer }>();

  private details(res: ServerResponse, space: Space): void {
    const modelled = this.d.replay.modelledListeners(space.id);
    const simTime = this.d.replay.simTime();
    const audio = this.d.hub.audio;
    const ready = audio.recordingReady(space);
    const lost = audio.recordingLost(space);
    let c = this.detailsCache.get(space);
    if (!c || c.version !== space.version || c.peersReal !== space.peers.real || c.peersVirtual !== space.peers.virtual || c.modelled !== modelled || c.simTime !== simTime || c.ready !== ready || c.lost !== lost) {
      const body = Buffer.from(JSON.stringify({ v: 1, space: this.viewOf(space, modelled, simTime, ready, lost) }));
      c = { version: space.version, peersReal: space.peers.real, peersVirtual: space.peers.virtual, modelled, simTime, ready, lost, body };
      this.detailsCache.set(space, c);
    }
    sendJsonBytes(res, 200, c.body);
  }

  private html(res: ServerResponse, page: string): void {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
    res.end(page);
  }

  private assets: Promise<DashboardAssets> | null = null;

  /** uPlot from the installed package, read once on first use (the machines are offline: no CDN). */
  private async asset(res: ServerResponse, name: string): Promise<void> {
    if (!Object.hasOwn(ASSET_TYPES, name)) throw new ApiError('NOT_FOUND', `no asset '${name.slice(0, 64)}'`);
    const assets = await (this.assets ??= loadDashboardAssets());
    const key = name as keyof DashboardAssets;
    res.writeHead(200, { 'content-type': ASSET_TYPES[key], 'cache-control': 'max-age=3600' });
    res.end(assets[key]);
  }

  private timeline(req: IncomingMessage, res: ServerResponse): void {
    const raw = new URL(req.url ?? '/', 'http://x').searchParams.get('since') ?? '0';
    if (!/^\d{1,9}$/.test(raw)) throw new ApiError('BAD_REQUEST', `since must be a whole number ≥ 0, not '${raw.slice(0, 20)}'`);
    const body = this.d.replay.timeline(Number(raw));
    if (!body) throw new ApiError('NOT_FOUND', 'no replay runs on this server (start one with stampede replay)');
    sendJson(res, 200, { v: 1, ...body, replay: this.d.replay.status() });
  }

  private readyz(res: ServerResponse): void {
    const why = this.d.draining() ? 'draining' : this.d.shedder.reason();
    sendJson(res, why ? 503 : 200, { ready: !why, reason: why });
  }

  private metricsText(res: ServerResponse): Promise<void> {
    return writeMetrics(this.d.metrics.registry, res);
  }

  private page(res: ServerResponse): void {
    this.html(res, LISTENER_PAGE);
  }

  /** One page of spaces (docs/reliability.md #24): at most `maxPageSize`, `next` names the page after. */
  private listSpaces({ req, res }: Ctx): void {
    const max = this.d.config.maxPageSize;
    const query = Object.fromEntries(new URL(req.url ?? '/', 'http://x').searchParams);
    const q = parseBody(listSpacesQuery(max), query, `the list takes limit (1 to ${max}) and after (a space id)`);
    const page = this.d.spaces.page(q.limit ?? max, q.after);
    if (!page) throw new ApiError('BAD_REQUEST', `after: no space '${q.after}' here (it ended and was forgotten, or never was); list again without after`);
    sendJson(res, 200, { v: 1, spaces: page.spaces.map((s) => this.view(s)), next: page.next });
  }

  private async createSpace({ req, res }: Ctx): Promise<void> {
    this.d.hostKeys.checkOperator(req.headers.authorization);
    const body = parseBody(createSpaceBody, await readJson(req, this.d.config.maxBodyBytes), 'the space needs a title and an ISO 8601 scheduledStart');
    const { space, hostToken } = this.d.createSpace({ title: body.title, scheduledStart: Date.parse(body.scheduledStart), hostName: body.host?.name ?? 'host' });
    sendJson(res, 201, { v: 1, space: this.view(space), hostToken });
  }

  private async hostAction({ req, res }: Ctx, space: Space, action: 'start' | 'end'): Promise<void> {
    this.d.hostKeys.checkHostOrOperator(space.id, req.headers.authorization);
    const body = parseBody(hostActionBody, await readJson(req, this.d.config.maxBodyBytes), 'a host action body may only hold syntheticHost (true or false)');
    if (action === 'start') await this.d.startSpace(space, { syntheticHost: body.syntheticHost === true });
    else await this.d.endSpace(space);
    sendJson(res, 200, { v: 1, space: this.view(space) });
  }

  /** Counts a finished join attempt; attempts and admissions are counted together, when the outcome is known. */
  private readonly attempts = new Map<JoinOutcome, PlainCounterChild>();
  private countJoin(outcome: JoinOutcome): void {
    let c = this.attempts.get(outcome);
    if (!c) this.attempts.set(outcome, (c = this.d.metrics.joinAttempts.labels({ kind: 'real', outcome })));
    c.inc();
    if (outcome === 'rejected') return;
    this.counters.attempts++;
    if (outcome === 'admitted') this.counters.admitted++;
  }

  private refuse(outcome: JoinOutcome, err: unknown): never {
    this.countJoin(outcome);
    throw err;
  }

  /**
   * A join. Without a body (the common case) it is decided and answered before this returns; it waits
   * only for a body to arrive, the replay model's join delay, or the cluster to hold the ticket.
   */
  private join({ req, res }: Ctx, spaceId: string): Promise<void> | void {
    const space = this.d.spaces.get(spaceId);
    if (!space) return this.refuse('rejected', new ApiError('SPACE_NOT_FOUND', `no space with id '${spaceId.slice(0, 64)}'`));
    // no body: nothing to read or validate (an empty body is the empty join, `{}`)
    if (hasNoBody(req)) return this.decideJoin(req, res, space, undefined);
    return readJson(req, this.d.config.maxBodyBytes).then(
      (raw) => this.decideJoin(req, res, space, this.joinName(raw)),
      (err: unknown) => this.refuse('rejected', err),
    );
  }

  /** The name a join body gives (undefined: none); a body the schema refuses is a rejected join. */
  private joinName(raw: unknown): string | undefined {
    try {
      return parseBody(joinBody, raw, 'the join body may only hold a name').name;
    } catch (err) {
      return this.refuse('rejected', err);
    }
  }

  private decideJoin(req: IncomingMessage, res: ServerResponse, space: Space, name: string | undefined): Promise<void> | void {
    const { config, clock } = this.d;
    // decided now: its claim gives way to its own token, taken (or not) below
    this.release(res);
    const now = clock.now();
    const decision = decideJoin({
      spaceState: space.state,
      draining: this.d.draining(),
      shedding: space.state === 'ended' || this.d.draining() ? null : this.d.shedder.reason(),
      token: this.d.bucket.peek(),
      listenersAndPending: space.realListeners + this.d.tickets.pendingFor(space.id, now),
      maxListeners: config.maxListeners,
      retryAfterMs: config.retryAfterMs,
    });
    if (decision.takesToken) this.d.bucket.take();
    if (!decision.admit) return this.refuse(decision.outcome, new ApiError(decision.code, decision.message, decision.retryAfterMs === undefined ? {} : { retryAfterMs: decision.retryAfterMs }));
    // one address: its own join rate, and a bounded number of unused tickets (docs/reliability.md #23)
    const ip = clientAddress(req, config.trustedProxies);
    const mine = this.d.joinsPerAddress.take(ip, now);
    if (!mine.ok) return this.refuse('rate_limited', new ApiError('RATE_LIMITED', 'too many joins from this address right now', { retryAfterMs: Math.max(1000, mine.retryAfterMs) }));
    if (this.d.tickets.pendingFrom(ip, now) >= config.maxTicketsPerAddress) {
      return this.refuse('rate_limited', new ApiError('TOO_MANY_TICKETS', `this address holds ${config.maxTicketsPerAddress} unused tickets: use one, or wait for them to expire`, { retryAfterMs: config.retryAfterMs }));
    }
    const gate = this.d.replay.joinGate();
    const delay = modelledDelayMs(gate, config.maxModelledJoinDelayMs);
    if (delay > 0) return clock.sleep(delay).then(() => this.admitJoin(req, res, space, name ?? 'listener', ip, gate));
    return this.admitJoin(req, res, space, name ?? 'listener', ip, gate);
  }

  private admitJoin(req: IncomingMessage, res: ServerResponse, space: Space, name: string, ip: string, gate: JoinGate): Promise<void> | void {
    const { config, clock } = this.d;
    if (failsUnderModel(gate, this.d.random)) return this.refuse('failed', new ApiError('JOIN_FAILED', undefined, { retryAfterMs: config.retryAfterMs }));
    const { ticket, expiresAt } = this.d.tickets.issue(space.id, name, clock.now(), ip);
    // in a cluster: good on any instance once Redis has it (while Redis is away, on this one only)
    const sharing = this.d.shareTicket(ticket, { spaceId: space.id, name }, config.ticketTtlMs);
    if (sharing) return sharing.then(() => this.answerJoin(req, res, ticket, expiresAt));
    this.answerJoin(req, res, ticket, expiresAt);
  }

  /** The last Host header a join's wsUrl named. */
  private goodHost = '';

  private answerJoin(req: IncomingMessage, res: ServerResponse, ticket: string, expiresAt: number): void {
    this.countJoin('admitted');
    const given = req.headers.host;
    // the Host a crowd sends is the same every time: the last one that passed is known good
    const host = given !== undefined && (given === this.goodHost || (/^[A-Za-z0-9.:[\]-]{1,255}$/.test(given) && (this.goodHost = given))) ? given : this.d.listenAddress();
    sendJson(res, 200, { v: 1, ticket, expiresAt: new Date(expiresAt).toISOString(), role: 'listener', wsUrl: `ws://${host}/ws?ticket=${ticket}` });
  }

  /** The recording as Ogg Opus; byte ranges are served so a player can read the duration and seek. */
  private async recording(req: IncomingMessage, res: ServerResponse, space: Space): Promise<void> {
    // in a cluster whichever instance answers serves it, from the directory the instances share
    if (this.d.hub.audio.recordingLost(space)) throw new ApiError('RECORDING_LOST');
    const rec = space.state === 'ended' ? await this.d.hub.audio.published(space) : null;
    if (!rec?.ready) throw new ApiError('RECORDING_NOT_READY');
    const size = rec.bytes;
    const headers: Record<string, string> = {
      'content-type': 'audio/ogg; codecs=opus',
      'accept-ranges': 'bytes',
      'x-stampede-chunks': String(rec.chunks),
      // false when the disk quota stopped the recording: it holds the whole chunks up to that point
      'x-stampede-complete': String(!rec.truncated),
      'content-disposition': `inline; filename="${space.id}.opus"`,
    };
    const range = /^bytes=(\d*)-(\d*)$/.exec(String(req.headers.range ?? ''));
    let start = 0;
    let end = size - 1;
    if (range && (range[1] || range[2])) {
      start = range[1] ? Number(range[1]) : Math.max(0, size - Number(range[2]));
      end = range[1] && range[2] ? Math.min(size - 1, Number(range[2])) : size - 1;
      if (start > end || start >= size) {
        res.writeHead(416, { 'content-range': `bytes */${size}` });
        return void res.end();
      }
      res.writeHead(206, { ...headers, 'content-range': `bytes ${start}-${end}/${size}`, 'content-length': String(end - start + 1) });
    } else res.writeHead(200, { ...headers, 'content-length': String(size) });
    if (req.method === 'HEAD') return void res.end();
    createReadStream(rec.path, { start, end }).on('error', () => res.destroy()).pipe(res);
  }

  private playlist(res: ServerResponse, space: Space): void {
    const w = this.d.hub.audio.liveWindow(space);
    sendJson(res, 200, { v: 1, state: space.state, first: w.first, last: w.last, chunkMs: this.d.config.chunkIntervalMs }, { 'cache-control': 'max-age=1' });
  }

  private chunk(res: ServerResponse, space: Space, seqText: string): void {
    const seq = /^\d{1,10}$/.test(seqText) ? Number(seqText) : NaN;
    if (!Number.isSafeInteger(seq)) throw new ApiError('BAD_REQUEST', 'a chunk sequence number is a whole number');
    const buf = this.d.hub.audio.chunk(space, seq);
    if (!buf) throw new ApiError('CHUNK_NOT_FOUND', `no chunk ${seq} in the live window`);
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(buf.length), 'cache-control': 'public, max-age=30, immutable' });
    res.end(buf);
  }
}
