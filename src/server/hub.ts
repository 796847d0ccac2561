import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { nextSlot, type Clock } from '../clock.js';
import type { ServerConfig } from '../config.js';
import type { ServerMetrics } from '../metrics/index.js';
import { CLOSE, closeCodeLabel, encodeServerMessage, type ServerMessage } from '../protocol/index.js';
import type { Role, Space } from '../space/index.js';
import { LogThrottle } from '../logging.js';
import { AudioPlane } from './audio-plane.js';
import type { AudioSocket } from './audio-socket.js';
import { Connections, type Conn } from './connections.js';
import { Dispatch, sendTo } from './dispatch.js';
import { NO_FAULTS, type ServerFaults } from './faults.js';
import type { ReplayView } from './replay-view.js';

/**
 * The close code ws sends for an error on the receiving side, from the error's documented `code`
 * (ws's `WS_ERR_*`, doc/ws.md "Error codes"): invalid UTF-8 → 1007, a message or frame too big → 1009,
 * too many fragments or buffered parts → 1008, every other frame-level violation → 1002. 0: not ws's.
 */
export function wsErrorCloseCode(err: Error): number {
  const code = (err as Error & { code?: unknown }).code;
  if (typeof code !== 'string' || !code.startsWith('WS_ERR_')) return 0;
  if (code === 'WS_ERR_INVALID_UTF8') return CLOSE.INVALID_PAYLOAD;
  if (code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH' || code === 'WS_ERR_UNSUPPORTED_DATA_PAYLOAD_LENGTH') return CLOSE.TOO_BIG;
  if (code === 'WS_ERR_TOO_MANY_BUFFERED_PARTS') return CLOSE.POLICY;
  return CLOSE.PROTOCOL_ERROR;
}

/**
 * The WebSocket side of the server, in three parts: `connections` (registry, per-address counts,
 * heartbeat, close-all), `audio` (ingest, live window, recording, fan-out) and message dispatch. The hub
 * itself attaches sockets, runs the periodic work (heartbeats; counts and reactions coalesced per tick)
 * and tells a space's people when it goes live or ends. Domain facts live in Space; this is transport.
 */
export class Hub {
  readonly connections: Connections;
  readonly audio: AudioPlane;
  private readonly dispatch: Dispatch;
  /** The last count message sent per space, so an unchanged count is not sent again. */
  private readonly lastCount = new Map<string, string>();
  private readonly spaces = new Map<string, Space>();
  /** Reactions from listeners on other instances, per space, sent with this instance's own at the next tick. */
  private readonly peerReactions = new Map<string, Map<string, number>>();
  private running = false;
  private stopLoops = new AbortController();
  private loops: Promise<void>[] = [];
  private readonly throttle: LogThrottle;
  /** Called when the last host connection of a live space closes (docs/reliability.md #24: the grace timer). */
  onHostGone: (space: Space) => void = () => undefined;

  constructor(
    private readonly config: ServerConfig,
    private readonly clock: Clock,
    private readonly metrics: ServerMetrics,
    private readonly log: Logger,
    recordingDir: () => string,
    private readonly replay: ReplayView,
    /** Where an accepted chunk goes to be fanned out by every instance, this one included (the bus). */
    private readonly publish: (spaceId: string, chunk: Buffer) => void = (id, chunk) => {
      const space = this.spaces.get(id);
      if (space) this.deliverAudio(space, chunk);
    },
    /** Reactions taken on this instance, for the other instances' listeners. */
    private readonly shareReactions: (space: Space, counts: Partial<Record<string, number>>) => void = () => undefined,
    /** Injected faults (`NO_FAULTS` unless asked for): the fan-out route, heartbeats, the recording disk. */
    private readonly faults: ServerFaults = NO_FAULTS,
  ) {
    this.throttle = new LogThrottle(() => clock.now());
    this.connections = new Connections(config, clock, metrics, (socket) => this.audio.queuedBeside(socket));
    this.audio = new AudioPlane(config, clock, metrics, log, recordingDir, faults, (conn, data) => this.connections.send(conn, data));
    this.dispatch = new Dispatch(config, metrics, this.connections, (conn, buf) => this.ingestAudio(conn.space, buf), () => clock.now());
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.stopLoops = new AbortController();
    this.loops = [this.every(this.config.heartbeatMs, () => this.faults.heartbeat(() => this.connections.heartbeat())), this.every(this.config.countIntervalMs, () => this.tick())];
  }

  private async every(ms: number, fn: () => void): Promise<void> {
    const t0 = this.clock.now();
    // scheduled from the start so a slow tick does not push every later one back; the ticks a stall or a busy
    // machine made it miss are skipped, not run back to back: a heartbeat twice in a row would end every peer
    // whose pong to the first is not back yet, and a count tick sends the counts as they are now
    for (let k = 1; this.running; k = nextSlot(t0, ms, k, this.clock.now())) {
      await this.clock.sleep(t0 + k * ms - this.clock.now(), this.stopLoops.signal);
      if (!this.running) return;
      try {
        fn();
      } catch (err) {
        const suppressed = this.throttle.allow('periodic task failed');
        if (suppressed !== null) this.log.error({ err, suppressed }, 'periodic task failed');
      }
    }
  }

  /** Adds an upgraded socket to a space. */
  attach(ws: AudioSocket, socket: Duplex, space: Space, role: Role, name: string, ip: string, after = -1): void {
    this.spaces.set(space.id, space);
    const conn = this.connections.add(ws, socket, space, role, ip);
    try {
      space.join(conn.id, name, role);
    } catch {
      this.connections.remove(conn);
      ws.close(CLOSE.SPACE_ENDED, 'space ended');
      return;
    }
    this.connections.enter(conn, (old) => old.ws.close(CLOSE.REPLACED, 'replaced by a new host connection'), after);
    // only a pong echoing our last ping's payload proves the peer reads (docs/reliability.md #20)
    ws.on('pong', (data) => conn.liveness.pong(data));
    ws.on('message', (data, isBinary) => this.dispatch.onMessage(conn, data, isBinary));
    ws.on('error', (err) => {
      // ws closes the connection itself for frame-level violations; remember which code it sent
      conn.violation = wsErrorCloseCode(err);
      this.metrics.protocolErrors.inc({ code: conn.violation ? String(conn.violation) : 'socket' });
      this.log.debug({ err: err.message, conn: conn.id }, 'socket error');
    });
    ws.on('close', (code) => {
      this.metrics.wsCloses.inc({ code: closeCodeLabel(conn.violation || code) });
      this.connections.remove(conn);
      if (role === 'host' && space.state === 'live' && !this.connections.hostOf(space.id)) this.onHostGone(space);
    });
    sendTo(this.connections, conn, { type: 'welcome', listenerId: conn.id, role, space: space.snapshot(this.replay.modelledListeners(space.id)) });
  }

  /**
   * One audio chunk from the host socket or the synthetic host; an error text, or null when accepted.
   * Accepted, it is published once: every instance (this one at once, in this call) fans it out.
   */
  ingestAudio(space: Space, buf: Buffer): string | null {
    const err = this.audio.check(space, buf);
    if (err === null) this.publish(space.id, buf);
    return err;
  }

  /** A chunk to fan out to this instance's listeners, from this instance or another. */
  deliverAudio(space: Space, buf: Buffer): void {
    if (this.audio.deliver(space, buf, this.connections.listenersOf(space.id)) !== 'quota') return;
    const host = this.connections.hostOf(space.id);
    const message = `the recordings have reached their disk quota (recordingQuotaBytes = ${this.config.recordingQuotaBytes}): this space goes on air, unrecorded from chunk ${space.chunks - 1}`;
    if (host) sendTo(this.connections, host, { type: 'error', code: 'RECORDING_QUOTA', message });
  }

  /** Reactions sent on another instance, merged into this instance's next tick. */
  addPeerReactions(space: Space, counts: Partial<Record<string, number>>): void {
    let pending = this.peerReactions.get(space.id);
    if (!pending) this.peerReactions.set(space.id, (pending = new Map()));
    for (const [emoji, n] of Object.entries(counts)) if (n) pending.set(emoji, (pending.get(emoji) ?? 0) + n);
  }

  private broadcast(space: Space, msg: ServerMessage): void {
    this.connections.broadcast(space.id, encodeServerMessage(msg));
  }

  /**
   * A periodic message for everyone in a space (counts, reactions): the host gets it now; the listeners with
   * the space's next chunk, in the same write, while audio flows (docs/reliability.md #15), else now.
   */
  private spread(space: Space, msg: ServerMessage): void {
    const data = Buffer.from(encodeServerMessage(msg));
    const host = this.connections.hostOf(space.id);
    if (host) this.connections.send(host, data);
    if (!this.audio.carry(space.id, data)) this.connections.broadcast(space.id, data, false);
  }

  /** Carried messages no chunk took (the audio stopped, or a fault holds it): sent to the listeners now. */
  private sendCarried(space: Space): void {
    for (const data of this.audio.takeCarried(space.id)) this.connections.broadcast(space.id, data, false);
  }

  /** Drops what the hub remembers of a space the server has forgotten. */
  forget(spaceId: string): void {
    this.spaces.delete(spaceId);
    this.lastCount.delete(spaceId);
    this.peerReactions.delete(spaceId);
    this.audio.forget(spaceId);
  }

  /** The space went live; `record` on the one instance that writes its recording. */
  async spaceLive(space: Space, record = true): Promise<void> {
    this.spaces.set(space.id, space);
    if (record) await this.audio.open(space);
    this.broadcast(space, { type: 'state', state: 'live', at: new Date(space.startedAt ?? this.clock.now()).toISOString() });
  }

  /** The space ended: tell everyone, close listeners with 4500, publish the recording. */
  async spaceEnded(space: Space, closeCode: number = CLOSE.SPACE_ENDED): Promise<void> {
    this.spaces.set(space.id, space);
    this.audio.flush(space, this.connections.listenersOf(space.id));
    this.sendCarried(space);
    this.broadcast(space, { type: 'state', state: 'ended', at: new Date(space.endedAt ?? this.clock.now()).toISOString() });
    this.sendCounts(space, true);
    this.connections.closeSpace(space.id, closeCode, closeCode === CLOSE.SPACE_ENDED ? 'space ended' : 'server going away', 'space ended');
    await this.audio.close(space);
  }

  private sendCounts(space: Space, force = false): void {
    const { real, virtual, total } = space.listenerCounts(this.replay.modelledListeners(space.id));
    const simTime = this.replay.simTime();
    const key = `${real}/${virtual}/${simTime}`;
    if (!force && key === this.lastCount.get(space.id)) return;
    this.lastCount.set(space.id, key);
    const zone = simTime ? this.replay.simTimeZone() : null;
    const msg: ServerMessage = { type: 'count', real, virtual, total, simTime, ...(zone ? { timeZone: zone } : {}) };
    if (force) this.broadcast(space, msg);
    else this.spread(space, msg);
  }

  /** Coalesced counts and reactions: at most one of each per space per tick. */
  tick(): void {
    let virtual = 0;
    for (const space of this.spaces.values()) {
      if (space.state === 'ended') continue;
      virtual += this.replay.modelledListeners(space.id);
      this.sendCarried(space);
      this.sendCounts(space);
      const reactions = space.takeReactions();
      if (reactions) this.shareReactions(space, reactions);
      const peer = this.peerReactions.get(space.id);
      if (peer?.size) {
        const all: Record<string, number> = { ...reactions };
        for (const [emoji, n] of peer) all[emoji] = (all[emoji] ?? 0) + n;
        peer.clear();
        this.spread(space, { type: 'reactions', counts: all });
      } else if (reactions) this.spread(space, { type: 'reactions', counts: reactions });
    }
    this.metrics.listeners.set({ kind: 'virtual' }, virtual);
  }

  /** Stops the periodic work, then closes every connection (see Connections.closeAll). */
  async closeAll(code: number, reason: string, deadlineMs: number): Promise<void> {
    await this.stop();
    await this.connections.closeAll(code, reason, deadlineMs);
  }

  async stop(): Promise<void> {
    this.running = false;
    this.stopLoops.abort();
    this.audio.stop();
    await Promise.all(this.loops);
    this.loops = [];
  }
}
