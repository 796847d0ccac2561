/**
 * Why one file (~380 lines): this is the server's own composition root. About half is the constructor,
 * wiring the parts once and in an order that matters (shedding and tickets before the hub, the hub before
 * the cluster sync, both before the HTTP API and the upgrade admission); the rest is the lifecycle that
 * crosses the parts (a space going live or ending touches the hub, the audio plane, the sync and the
 * synthetic host; stop() drains them in order). The work itself is in the parts: `http-api.ts`,
 * `upgrade.ts`, `hub.ts`, `connections.ts`, `audio-plane.ts`, `dispatch.ts`, `space-sync.ts`.
 */
import { mkdtemp } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { WebSocketServer, type Server as WsServer, type ServerOptions } from 'ws';
import type { Clock } from '../clock.js';
import type { ServerConfig } from '../config.js';
import type { ServerMetrics } from '../metrics/index.js';
import { ApiError, CLOSE } from '../protocol/index.js';
import { SpaceStore, type Space } from '../space/index.js';
import { OPEN_GATE, Shedder, TokenBucket, type LoadSignal } from './admission.js';
import { HostKeys } from './host-auth.js';
import { HttpApi, REFUSED, type JoinCounters } from './http-api.js';
import { ApiResponse } from './http-util.js';
import type { ServerFaults } from './faults.js';
import { AudioSocket } from './audio-socket.js';
import { Hub } from './hub.js';
import { KeyedBuckets, LoadMonitor, newToken } from '../guard/index.js';
import { NO_REPLAY, type ReplayView } from './replay-view.js';
import { SyntheticHost } from './synthetic-host.js';
import { TicketBook } from './tickets.js';
import { chooseProtocol, destroyOnError, Upgrades } from './upgrade.js';
import { PacedQueue, type PacedJob } from './paced.js';
import { LocalBus, type SpaceBus } from './bus.js';
import { SpaceSync } from './space-sync.js';

export type { JoinCounters } from './http-api.js';

/** A join or an upgrade waiting for its turn. */
interface Arrival extends PacedJob {
  run(): void;
}

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
  /** What instances share (audio, spaces, counts, tickets); defaults to the embedded LocalBus: nothing shared. */
  bus?: SpaceBus;
  /** Injected faults (a `FaultInjector`); `NO_FAULTS` by default, which costs nothing per chunk. */
  faults?: ServerFaults;
}

/**
 * The live-space server: node:http for the API (`http-api.ts`), ws (noServer) for the control channel and
 * audio on the same port (`upgrade.ts`, `hub.ts`). This class owns the parts' lifecycle and the spaces'
 * lifecycle. Nothing listens until start(); stop() drains and is idempotent.
 */
export class LiveServer {
  readonly spaces: SpaceStore;
  private readonly http: Server<typeof IncomingMessage, typeof ApiResponse>;
  private readonly wss: WsServer<typeof AudioSocket>;
  private readonly hub: Hub;
  private readonly api: HttpApi;
  private readonly upgrades: Upgrades;
  private readonly hostKeys: HostKeys;
  /** The operator's token: creating spaces, and starting or ending any of them (docs/reliability.md #24). */
  readonly operatorToken: string;
  /** True when the operator token was generated here (the CLI prints it); false when it was configured. */
  readonly operatorTokenGenerated: boolean;
  private readonly monitor: LoadMonitor | null;
  private readonly hosts = new Map<string, SyntheticHost>();
  private readonly bus: SpaceBus;
  private readonly sync: SpaceSync;
  private readonly log: Logger;
  private draining = false;
  private stopping: Promise<void> | null = null;
  /** Ends the host-gone grace timers when the server stops. */
  private readonly lifetime = new AbortController();
  private recordingDir = '';
  private address: AddressInfo | null = null;
  /** Spaces created here whose lease another instance took over (this one went silent for a lease): when this one learnt it. */
  private readonly leasesLost = new Map<string, number>();

  constructor(private readonly deps: LiveServerDeps) {
    const { config, clock, logger, metrics } = deps;
    const local = deps.replay ?? NO_REPLAY;
    // an instance running no replay shows the simulated time another instance's replay reports, and gates
    // real joins by that replay's model (a replay driving a cluster: docs/cluster.md)
    const replay: ReplayView = {
      joinGate: () => (deps.replay ? local.joinGate() : (this.sync.peerGate() ?? OPEN_GATE)),
      simTime: () => local.simTime() ?? this.sync.peerSimTime(),
      simTimeZone: () => local.simTimeZone() ?? this.sync.peerSimTimeZone(),
      modelledListeners: (id) => local.modelledListeners(id),
      status: () => local.status(),
      audioFaults: () => local.audioFaults(),
      timeline: (since) => local.timeline(since),
    };
    this.bus = deps.bus ?? new LocalBus(config.instanceId);
    this.operatorTokenGenerated = config.operatorToken === null;
    this.operatorToken = config.operatorToken ?? newToken();
    this.hostKeys = new HostKeys(this.operatorToken);
    this.log = logger.child({ module: 'server' });
    this.spaces = new SpaceStore(deps.newId ?? (() => randomBytes(8).toString('hex')));
    const tickets = new TicketBook(config.ticketTtlMs);
    // the real process: loop lag that cannot read 0 while the loop is too busy to sample, and memory
    // beside the heap (docs/reliability.md #22)
    this.monitor = deps.loadSignal ? null : new LoadMonitor({ warmupMs: config.shedWarmupMs, onSample: (r) => metrics.eventLoopLag.set(r.lagMs / 1000) });
    const limits = { maxLagMs: config.shedEventLoopLagMs, maxHeapBytes: config.shedHeapBytes, maxRssBytes: config.shedRssBytes, maxExternalBytes: config.shedExternalBytes };
    const shedder = new Shedder(deps.loadSignal ?? this.monitor!, limits, (reason, r) => {
      const MiB = 2 ** 20;
      const at = { lagMs: Math.round(r.lagMs), heapMiB: Math.round(r.heapBytes / MiB), rssMiB: Math.round(r.rssBytes / MiB), externalMiB: Math.round(r.externalBytes / MiB), maxLagMs: config.shedEventLoopLagMs };
      if (reason) this.log.warn({ reason, ...at }, 'shedding load: new joins get 503 and new sockets 1013');
      else this.log.info(at, 'stopped shedding load');
    });
    this.hub = new Hub(
      config,
      clock,
      metrics,
      logger.child({ module: 'hub' }),
      () => this.recordingDir,
      replay,
      (spaceId, chunk) => this.bus.publishAudio(spaceId, chunk),
      (space, counts) => this.bus.publishReactions(space.id, counts),
      deps.faults,
    );
    this.hub.onHostGone = (space) => void this.endIfHostStaysGone(space);
    this.sync = new SpaceSync({
      bus: this.bus,
      spaces: this.spaces,
      hostKeys: this.hostKeys,
      clock,
      log: this.log,
      intervalMs: config.peerIntervalMs,
      localSimTime: () => local.simTime(),
      localSimTimeZone: () => local.simTimeZone(),
      localGate: () => (deps.replay ? local.joinGate() : null),
      localFaults: () => local.audioFaults(),
      modelledListeners: (id) => local.modelledListeners(id),
      onPeers: (n) => metrics.clusterPeers.set(n),
      hooks: {
        live: async (space) => {
          this.publishSpaceStates();
          await this.hub.spaceLive(space, false);
        },
        ended: async (space, closeCode) => {
          this.publishSpaceStates();
          await this.hosts.get(space.id)?.stop();
          this.hosts.delete(space.id);
          await this.hub.spaceEnded(space, closeCode);
        },
        peerFaults: (from, faults) => deps.faults?.follow(from, faults),
        audio: (spaceId, chunk) => {
          const space = this.spaces.get(spaceId);
          if (space) this.hub.deliverAudio(space, chunk);
        },
        reactions: (space, counts) => this.hub.addPeerReactions(space, counts),
        synthetic: (spaceId) => this.hosts.has(spaceId),
        takeOver: async (space, from) => {
          metrics.clusterTakeovers.inc();
          const r = await this.hub.audio.takeOver(space, from.owner);
          if (r.resumed) this.log.info({ spaceId: space.id, from: from.owner, lastSeq: r.lastSeq, filled: r.filled }, 'recording continued from the shared directory');
          else this.log.warn({ spaceId: space.id, from: from.owner, firstSeq: r.lastSeq - r.filled + 1 }, "the previous owner's recording is not in this instance's recording directory: a new one starts at the live window");
          if (from.synthetic && space.state === 'live' && !this.draining) this.hostSynthetic(space);
        },
        lost: async (space) => {
          this.leasesLost.set(space.id, clock.now());
          await this.hosts.get(space.id)?.stop();
          this.hosts.delete(space.id);
          await this.hub.audio.abandon(space);
        },
        status: () => ({
          url: this.address ? this.url : '',
          state: this.draining ? 'draining' : shedder.reason() ? 'shedding' : 'ready',
          listeners: this.spaces.list().reduce((n, s) => n + (s.state === 'ended' ? 0 : s.realListeners), 0),
          connections: this.hub.connections.count,
        }),
      },
    });
    this.api = new HttpApi({
      config,
      clock,
      metrics,
      log: this.log,
      random: deps.random,
      spaces: this.spaces,
      hub: this.hub,
      tickets,
      bucket: new TokenBucket(clock, config.joinRatePerSecond, config.joinBurst),
      joinsPerAddress: new KeyedBuckets({ perSecond: config.joinRatePerAddress, burst: config.joinBurstPerAddress }),
      shedder,
      hostKeys: this.hostKeys,
      replay,
      shareTicket: (ticket, t, ttlMs) => (this.bus.shared ? this.bus.putTicket(ticket, t, ttlMs).catch(() => undefined) : undefined),
      cluster: async () => ({ instance: this.sync.instanceId, shared: this.sync.shared, instances: await this.sync.statuses() }),
      draining: () => this.draining,
      listenAddress: () => `${this.address?.address}:${this.address?.port}`,
      createSpace: (input) => this.createSpace(input),
      startSpace: (space, opts) => this.startSpace(space, opts),
      endSpace: (space) => this.endSpace(space),
    });
    this.http = createServer({
      // the request id goes out with the other headers in one writeHead (http-util.ts)
      ServerResponse: ApiResponse,
      maxHeaderSize: config.maxHeaderSize,
      headersTimeout: config.headersTimeoutMs,
      requestTimeout: config.requestTimeoutMs,
      keepAliveTimeout: config.keepAliveTimeoutMs,
      // Node enforces the two timeouts above only when it sweeps connections (every 30 s by default)
      connectionsCheckingInterval: Math.min(1_000, config.headersTimeoutMs),
    });
    this.http.maxHeadersCount = config.maxHeadersCount;
    this.http.maxConnections = config.maxConnections + 1_000;
    this.wss = new WebSocketServer<typeof AudioSocket>({
      // every socket tells the fan-out when its close frame goes (audio-socket.ts)
      WebSocket: AudioSocket,
      noServer: true,
      maxPayload: config.maxPayload,
      maxFragments: config.maxFragments,
      maxBufferedChunks: config.maxBufferedChunks,
      perMessageDeflate: false,
      skipUTF8Validation: false,
      clientTracking: false,
      // a browser host offers ['stampede.v1', 'stampede.host.<token>']: the token is never echoed back
      handleProtocols: chooseProtocol,
    } as ServerOptions<typeof AudioSocket>);
    this.upgrades = new Upgrades({
      config,
      clock,
      metrics,
      spaces: this.spaces,
      takeTicket: async (ticket) => {
        // in a cluster Redis decides (issued anywhere, taken once); while it is away, this instance's own book
        const mine = tickets.take(ticket, clock.now());
        if (!this.bus.shared) return mine;
        const shared = await this.bus.takeTicket(ticket).catch(() => undefined);
        return shared === undefined ? mine : shared;
      },
      hostKeys: this.hostKeys,
      connections: this.hub.connections,
      shedder,
      wss: this.wss,
      draining: () => this.draining,
      attach: (ws, socket, space, role, name, ip, after) => this.hub.attach(ws, socket, space, role, name, ip, after),
    });
    // joins and upgrades arrive in crowds: they are handled for at most `admissionTurnMs` between two of the
    // queue's event-loop turns, the rest in the next turns, so a crowd arriving together cannot stall the
    // loop (reliability.md #15); each is tens of µs, so the clock is read after each. One budget a turn is
    // not enough when other work makes turns long: under a flood of refusals a turn lasted 100–2,000 ms,
    // 16 joins a turn admitted a fraction of the join rate, and the joins holding tokens waited seconds
    // (docs/bench.md, Graceful overload, session 12); so within a long turn the budget starts afresh every
    // `admissionRefreshTurns` × `admissionTurnMs` (at an arrival or at a refused join)
    const arrivals = new PacedQueue<Arrival>({
      ms: config.admissionTurnMs,
      items: config.admissionsPerTurn,
      checkEvery: 1,
      now: () => clock.monotonic(),
      run: (a) => a.run(),
      done: () => undefined,
      refreshMs: config.admissionRefreshTurns * config.admissionTurnMs,
    });
    this.http.on('request', (req, res) => {
      if (!HttpApi.isJoin(req)) return void this.api.handle(req, res);
      // a join the gate will not take is refused before routing, the body or any JSON work; one it lets
      // through holds a claim on a token until it is decided
      const id = this.api.refuseEarly(req, res);
      if (id === REFUSED) return void arrivals.pump();
      arrivals.submit({ size: 1, next: 0, run: () => void this.api.handle(req, res, id) });
    });
    this.http.on('upgrade', (req, socket, head) => {
      // node:http leaves an upgraded socket without an error listener: one that fails while it waits is destroyed
      socket.on('error', destroyOnError);
      arrivals.submit({ size: 1, next: 0, run: () => void this.upgrades.handle(req, socket, head) });
    });
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
    // recordings already there count toward the disk quota: a restarted process does not start at 0
    const onDisk = await this.hub.audio.countRecordingsOnDisk(this.recordingDir);
    if (onDisk > 0) this.log.info({ recordingDir: this.recordingDir, bytes: onDisk, quotaBytes: config.recordingQuotaBytes }, 'recordings already on disk count toward the quota');
    // with Redis, an instance that cannot reach it fails here rather than serving alone
    await this.sync.start();
    try {
      await new Promise<void>((resolve, reject) => {
        this.http.once('error', reject);
        this.http.listen(config.port, config.host, () => {
          this.http.off('error', reject);
          resolve();
        });
      });
    } catch (err) {
      await this.sync.stop();
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EADDRINUSE') throw new Error(`${config.host}:${config.port} is already in use: stop what holds it, or pick another port (--port 0 takes any free one)`);
      if (code === 'EACCES') throw new Error(`not allowed to listen on ${config.host}:${config.port}: pick a port above 1023`);
      throw err;
    }
    // periodic work starts only once the port is ours, so a failed start leaves nothing running
    this.monitor?.start();
    this.hub.start();
    this.address = this.http.address() as AddressInfo;
    this.log.info({ url: this.url, recordingDir: this.recordingDir }, 'listening');
    return this.url;
  }

  /** What the audio plane holds now: spaces it keeps anything for, and the bytes of all live windows together. */
  audioHeld(): { tracks: number; liveWindowBytes: number } {
    return { tracks: this.hub.audio.trackCount, liveWindowBytes: this.hub.audio.liveWindowBytes };
  }

  /** Real join attempts and admissions since the server started (both only grow). */
  joinTotals(): Readonly<JoinCounters> {
    return this.api.joinTotals();
  }

  createSpace(input: { title: string; scheduledStart: number; hostName: string }): { space: Space; hostToken: string } {
    // spaces are bounded (docs/reliability.md #24): the ones not over by maxSpaces, the ended ones remembered by maxEndedSpaces
    const { maxSpaces } = this.deps.config;
    const c = this.spaces.countByState();
    if (c.scheduled + c.live >= maxSpaces) throw new ApiError('SPACE_LIMIT', `the server holds its cap of ${maxSpaces} spaces that are not over: end one first`);
    const space = this.spaces.create(input);
    const hostToken = this.hostKeys.issue(space.id);
    this.sync.created(space);
    this.publishSpaceStates();
    return { space, hostToken };
  }

  /** scheduled → live; with `syntheticHost` a built-in host starts sending audio. */
  async startSpace(space: Space, opts: { syntheticHost?: boolean } = {}): Promise<void> {
    const { maxLiveSpaces } = this.deps.config;
    if (space.state === 'scheduled' && this.spaces.countByState().live >= maxLiveSpaces) throw new ApiError('SPACE_LIMIT', `the server holds its cap of ${maxLiveSpaces} live spaces: end one first`);
    if (space.state === 'scheduled' && !this.hub.audio.recordingRoom()) {
      throw new ApiError('RECORDING_QUOTA', `the recordings have used their disk quota (recordingQuotaBytes = ${this.deps.config.recordingQuotaBytes}): no new space can be recorded`);
    }
    space.start(this.deps.clock.now());
    this.sync.changed(space);
    this.publishSpaceStates();
    await this.hub.spaceLive(space, !this.sync.shared || this.sync.owns(space));
    if (opts.syntheticHost) this.hostSynthetic(space);
    this.log.info({ spaceId: space.id }, 'space live');
  }

  private hostSynthetic(space: Space): void {
    const h = new SyntheticHost(this.deps.clock, space, (s, b) => this.hub.ingestAudio(s, b), this.deps.config, this.deps.random);
    this.hosts.set(space.id, h);
    h.start();
  }

  /** live → ended: listeners are closed with 4500 and the recording is published. */
  async endSpace(space: Space, closeCode: number = CLOSE.SPACE_ENDED): Promise<void> {
    space.end(this.deps.clock.now());
    this.sync.changed(space, closeCode);
    this.publishSpaceStates();
    await this.hosts.get(space.id)?.stop();
    this.hosts.delete(space.id);
    await this.hub.spaceEnded(space, closeCode);
    this.log.info({ spaceId: space.id, chunks: space.chunks }, 'space ended');
    this.forgetOldEnded();
  }

  /** Ended spaces past `maxEndedSpaces` are forgotten, oldest first (their recording files stay on disk). */
  private forgetOldEnded(): void {
    const ended = this.spaces.ended();
    for (const s of ended.slice(0, Math.max(0, ended.length - this.deps.config.maxEndedSpaces))) {
      this.spaces.forget(s.id);
      this.hub.forget(s.id);
      this.hostKeys.forget(s.id);
      this.sync.forget(s.id);
      this.leasesLost.delete(s.id);
    }
    this.publishSpaceStates();
  }

  /**
   * A live space whose host connection closed ends once `hostGoneGraceMs` passes without a host coming
   * back (docs/reliability.md #24). A space with the built-in synthetic host, or one another instance
   * owns, is not this instance's to end.
   */
  private async endIfHostStaysGone(space: Space): Promise<void> {
    const { hostGoneGraceMs } = this.deps.config;
    await this.deps.clock.sleep(hostGoneGraceMs, this.lifetime.signal);
    if (this.lifetime.signal.aborted || this.draining || space.state !== 'live' || this.hosts.has(space.id)) return;
    if (this.hub.connections.hostOf(space.id) || (this.sync.shared && !this.sync.owns(space))) return;
    this.log.info({ spaceId: space.id, graceMs: hostGoneGraceMs }, 'the host is gone: ending the space');
    await this.endSpace(space).catch((err: unknown) => this.log.warn({ err, spaceId: space.id }, 'could not end a space whose host left'));
  }

  private publishSpaceStates(): void {
    for (const [state, n] of Object.entries(this.spaces.countByState())) this.deps.metrics.spacesByState.set({ state }, n);
  }

  recordingReady(spaceId: string): boolean {
    return this.hub.audio.recordingOf(spaceId)?.ready ?? false;
  }

  recordingPath(spaceId: string): string | null {
    const r = this.hub.audio.recordingOf(spaceId);
    return r?.ready ? r.path : null;
  }

  /**
   * In a cluster: when this instance learnt that another one took over the lease of a space created here
   * (this one was silent for a lease — a stalled event loop, a process starved of CPU), or null. The
   * space's recording is then the other instance's, not this one's.
   */
  leaseLostAt(spaceId: string): number | null {
    return this.leasesLost.get(spaceId) ?? null;
  }

  /**
   * Graceful shutdown: readiness goes 503, new requests are answered 503 DRAINING, live spaces end (recordings flushed),
   * clients get 1001 in batches, stragglers are terminated at the deadline. Same promise on every call.
   */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      const { config } = this.deps;
      this.draining = true;
      this.lifetime.abort();
      this.log.info('draining');
      // the port stays open while draining: a new client is answered 503 + Retry-After, not refused at TCP
      this.http.closeIdleConnections();
      for (const h of this.hosts.values()) await h.stop();
      this.hosts.clear();
      for (const space of this.spaces.list()) {
        // in a cluster a space lives on where the others serve it; this instance ends only its own
        if (space.state === 'live' && (!this.sync.shared || this.sync.owns(space))) await this.endSpace(space, CLOSE.GOING_AWAY);
      }
      await this.hub.closeAll(CLOSE.GOING_AWAY, 'server going away', config.shutdownDeadlineMs);
      await this.sync.stop();
      const closed = new Promise<void>((resolve) => this.http.close(() => resolve()));
      this.http.closeAllConnections();
      await closed;
      this.monitor?.stop();
      this.log.info('stopped');
    })();
    return this.stopping;
  }
}
