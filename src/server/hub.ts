import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import type { WebSocket, RawData } from 'ws';
import type { Clock } from '../clock.js';
import type { ServerConfig } from '../config.js';
import type { ServerMetrics } from '../metrics/index.js';
import {
  CLOSE,
  closeCodeLabel,
  decodeClientMessage,
  encodeServerMessage,
  validateAudioChunk,
  type ServerMessage,
} from '../protocol/index.js';
import { DomainError, type Role, type Space } from '../space/index.js';
import { LogThrottle } from '../logging.js';
import { binaryFrame, sendFrame } from './preframed.js';
import { Recording } from './recording.js';
import type { ReplayView } from './replay-view.js';

interface Conn {
  id: string;
  ws: WebSocket;
  room: Room;
  role: Role;
  ip: string;
  alive: boolean;
  /** When this listener's buffer first went over the skip threshold; 0 while it keeps up. */
  behindSince: number;
  badMessages: number;
  closed: boolean;
  /** The close code the server sent for a protocol violation; the peer's socket often just drops (1006). */
  violation: number;
}

/** The close code ws sent for an error on the receiving side (ws tags its errors with a status code). */
function wsErrorCloseCode(err: Error): number {
  const sym = Object.getOwnPropertySymbols(err).find((k) => k.description === 'status-code');
  const code = sym ? (err as unknown as Record<symbol, unknown>)[sym] : undefined;
  return typeof code === 'number' ? code : 0;
}

interface Room {
  space: Space;
  listeners: Set<Conn>;
  host: Conn | null;
  recording: Recording | null;
  /** The last count message sent, so an unchanged count is not sent again. */
  lastCount: string;
  /** The live window for HTTP listeners (the CDN view): the most recent chunks, by sequence number. */
  recent: Buffer[];
}

/** How many recent chunks HTTP listeners can fetch: 30 s at the synthetic host's 100 ms cadence. */
export const LIVE_WINDOW_CHUNKS = 300;

/**
 * Owns every WebSocket: rooms per space, audio fan-out with per-listener backpressure, coalesced
 * counts and reactions, heartbeats, and the close path. Domain facts live in Space; this is transport.
 */
export class Hub {
  private readonly rooms = new Map<string, Room>();
  private readonly conns = new Set<Conn>();
  private readonly perAddress = new Map<string, number>();
  private nextConnId = 1;
  private running = false;
  private stopLoops = new AbortController();
  private loops: Promise<void>[] = [];
  private readonly throttle: LogThrottle;

  constructor(
    private readonly config: ServerConfig,
    private readonly clock: Clock,
    private readonly metrics: ServerMetrics,
    private readonly log: Logger,
    private readonly recordingDir: () => string,
    private readonly replay: ReplayView,
  ) {
    this.throttle = new LogThrottle(() => clock.now());
  }

  get connectionCount(): number {
    return this.conns.size;
  }

  connectionsFrom(ip: string): number {
    return this.perAddress.get(ip) ?? 0;
  }

  room(space: Space): Room {
    let r = this.rooms.get(space.id);
    if (!r) {
      r = { space, listeners: new Set(), host: null, recording: null, lastCount: '', recent: [] };
      this.rooms.set(space.id, r);
    }
    return r;
  }

  /** The live window: sequence numbers [first, last] an HTTP listener can fetch now (empty: first > last). */
  liveWindow(space: Space): { first: number; last: number } {
    const n = this.rooms.get(space.id)?.recent.length ?? 0;
    return { first: space.chunks - n, last: space.chunks - 1 };
  }

  /** One chunk of the live window, or null when it is not sent yet or has left the window. */
  chunk(space: Space, seq: number): Buffer | null {
    const recent = this.rooms.get(space.id)?.recent;
    if (!recent) return null;
    const i = seq - (space.chunks - recent.length);
    return i >= 0 && i < recent.length ? recent[i]! : null;
  }

  recordingOf(spaceId: string): Recording | null {
    return this.rooms.get(spaceId)?.recording ?? null;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.stopLoops = new AbortController();
    this.loops = [this.every(this.config.heartbeatMs, () => this.heartbeat()), this.every(this.config.countIntervalMs, () => this.tick())];
  }

  private async every(ms: number, fn: () => void): Promise<void> {
    const t0 = this.clock.now();
    for (let k = 1; this.running; k++) {
      // scheduled from the start so a slow tick does not push every later one back
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

  /** Adds an upgraded socket to a space's room. */
  attach(ws: WebSocket, space: Space, role: Role, name: string, ip: string): void {
    const room = this.room(space);
    const conn: Conn = { id: `c${this.nextConnId++}`, ws, room, role, ip, alive: true, behindSince: 0, badMessages: 0, closed: false, violation: 0 };
    this.conns.add(conn);
    this.perAddress.set(ip, (this.perAddress.get(ip) ?? 0) + 1);
    this.metrics.wsConnections.set(this.conns.size);
    try {
      space.join(conn.id, name, role);
    } catch (err) {
      this.detach(conn);
      ws.close(CLOSE.SPACE_ENDED, 'space ended');
      return;
    }
    if (role === 'host') {
      room.host?.ws.close(CLOSE.REPLACED, 'replaced by a new host connection');
      room.host = conn;
    } else {
      room.listeners.add(conn);
      this.metrics.listeners.inc({ kind: 'real' });
    }
    ws.on('pong', () => {
      conn.alive = true;
    });
    ws.on('message', (data, isBinary) => this.onMessage(conn, data, isBinary));
    ws.on('error', (err) => {
      // ws closes the connection itself for frame-level violations; remember which code it sent
      conn.violation = wsErrorCloseCode(err);
      this.metrics.protocolErrors.inc({ code: conn.violation ? String(conn.violation) : 'socket' });
      this.log.debug({ err: err.message, conn: conn.id }, 'socket error');
    });
    ws.on('close', (code) => {
      this.metrics.wsCloses.inc({ code: closeCodeLabel(conn.violation || code) });
      this.detach(conn);
    });
    this.send(conn, { type: 'welcome', listenerId: conn.id, role, space: space.snapshot(this.replay.modelledListeners(space.id)) });
  }

  /** Cleanup for a connection; idempotent, because close and terminate paths may both run it. */
  private detach(conn: Conn): void {
    if (conn.closed) return;
    conn.closed = true;
    this.conns.delete(conn);
    const n = (this.perAddress.get(conn.ip) ?? 1) - 1;
    if (n <= 0) this.perAddress.delete(conn.ip);
    else this.perAddress.set(conn.ip, n);
    const room = conn.room;
    if (room.listeners.delete(conn)) this.metrics.listeners.dec({ kind: 'real' });
    if (room.host === conn) room.host = null;
    room.space.leave(conn.id);
    this.metrics.wsConnections.set(this.conns.size);
  }

  private send(conn: Conn, msg: ServerMessage): void {
    if (conn.ws.readyState === conn.ws.OPEN) conn.ws.send(encodeServerMessage(msg));
  }

  private broadcastText(room: Room, msg: ServerMessage, includeHost = true): void {
    const text = encodeServerMessage(msg);
    for (const c of room.listeners) if (c.ws.readyState === c.ws.OPEN) c.ws.send(text);
    if (includeHost && room.host && room.host.ws.readyState === room.host.ws.OPEN) room.host.ws.send(text);
  }

  private reject(conn: Conn, code: string, message: string): void {
    this.metrics.protocolErrors.inc({ code });
    conn.badMessages++;
    if (conn.badMessages >= this.config.maxBadMessages) {
      conn.ws.close(CLOSE.POLICY, 'too many bad messages');
      return;
    }
    this.send(conn, { type: 'error', code, message });
  }

  private onMessage(conn: Conn, data: RawData, isBinary: boolean): void {
    const buf = Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data);
    if (isBinary) {
      if (conn.role !== 'host') return this.reject(conn, 'FORBIDDEN', 'only the host sends audio');
      const err = this.ingestAudio(conn.room.space, buf);
      if (err) this.reject(conn, 'BAD_AUDIO', err);
      return;
    }
    const r = decodeClientMessage(buf.toString('utf8'));
    if (!r.ok) return this.reject(conn, r.code, r.message);
    const space = conn.room.space;
    try {
      switch (r.msg.type) {
        case 'ping':
          this.send(conn, { type: 'pong', id: r.msg.id });
          return;
        case 'react':
          space.react(r.msg.emoji);
          return;
        case 'request_speak':
          if (space.requestToSpeak(conn.id) && conn.room.host) {
            this.send(conn.room.host, { type: 'speak_request', listenerId: conn.id, name: space.member(conn.id)?.name ?? '' });
          }
          return;
        case 'grant_speak':
          if (conn.role !== 'host') return this.reject(conn, 'FORBIDDEN', 'only the host grants the floor');
          space.grantSpeak(r.msg.listenerId);
          this.broadcastText(conn.room, { type: 'speakers', speakers: space.speakers() });
          return;
      }
    } catch (err) {
      if (err instanceof DomainError) return this.reject(conn, err.code, err.message);
      throw err;
    }
  }

  /**
   * Accepts one audio chunk for a live space: checks framing and order, records it, fans it out.
   * Returns an error text, or null when accepted. The host socket and the synthetic host both come here.
   */
  ingestAudio(space: Space, buf: Buffer): string | null {
    if (space.state !== 'live') return `the space is ${space.state}, not live`;
    const v = validateAudioChunk(buf);
    if (!v.ok) return `malformed audio chunk: ${v.code}`;
    if (v.seq !== space.chunks) return `out of order: expected sequence ${space.chunks}, got ${v.seq}`;
    space.chunks++;
    const room = this.room(space);
    room.recording?.append(buf);
    room.recent.push(buf);
    if (room.recent.length > LIVE_WINDOW_CHUNKS) room.recent.shift();
    this.metrics.recordingBytes.inc(buf.length + 4);
    this.fanOut(room, buf);
    return null;
  }

  /** The hot path: one frame built once, written to every listener; nothing allocated per listener. */
  private fanOut(room: Room, buf: Buffer): void {
    const t0 = performance.now();
    const frame = binaryFrame(buf);
    const skip = this.config.skipBufferedBytes;
    let sent = 0;
    let dropped = 0;
    let now = 0;
    for (const c of room.listeners) {
      const ws = c.ws;
      if (ws.readyState !== 1) continue;
      if (ws.bufferedAmount > skip) {
        dropped++;
        now ||= this.clock.now();
        if (c.behindSince === 0) c.behindSince = now;
        else if (now - c.behindSince > this.config.slowConsumerMs) {
          this.metrics.audioChunksDropped.inc({ reason: 'slow_consumer_closed' });
          // a listener this far behind cannot take a close frame either
          ws.terminate();
        }
        continue;
      }
      c.behindSince = 0;
      if (!sendFrame(ws, frame)) ws.send(buf);
      sent++;
    }
    if (sent) this.metrics.audioChunksSent.inc(sent);
    if (dropped) this.metrics.audioChunksDropped.inc({ reason: 'backpressure' }, dropped);
    this.metrics.fanoutDuration.observe((performance.now() - t0) / 1000);
  }

  async spaceLive(space: Space): Promise<void> {
    const room = this.room(space);
    if (!room.recording) {
      room.recording = new Recording(this.recordingDir(), space.id, this.log);
      await room.recording.open();
    }
    this.broadcastText(room, { type: 'state', state: 'live', at: new Date(space.startedAt ?? this.clock.now()).toISOString() });
  }

  /** The space ended: tell everyone, close listeners with 4500, publish the recording. */
  async spaceEnded(space: Space, closeCode: number = CLOSE.SPACE_ENDED): Promise<void> {
    const room = this.room(space);
    this.broadcastText(room, { type: 'state', state: 'ended', at: new Date(space.endedAt ?? this.clock.now()).toISOString() });
    this.sendCounts(room, true);
    for (const c of [...room.listeners]) c.ws.close(closeCode, closeCode === CLOSE.SPACE_ENDED ? 'space ended' : 'server going away');
    room.host?.ws.close(closeCode, 'space ended');
    await room.recording?.finish();
  }

  private sendCounts(room: Room, force = false): void {
    const s = room.space;
    const real = s.realListeners;
    const virtual = this.replay.modelledListeners(s.id);
    const simTime = this.replay.simTime();
    const msg: ServerMessage = { type: 'count', real, virtual, total: real + virtual, simTime };
    const key = `${real}/${virtual}/${simTime}`;
    if (!force && key === room.lastCount) return;
    room.lastCount = key;
    this.broadcastText(room, msg);
  }

  /** Coalesced counts and reactions: at most one of each per space per tick. */
  tick(): void {
    let virtual = 0;
    for (const room of this.rooms.values()) {
      if (room.space.state === 'ended') continue;
      virtual += this.replay.modelledListeners(room.space.id);
      this.sendCounts(room);
      const reactions = room.space.takeReactions();
      if (reactions) this.broadcastText(room, { type: 'reactions', counts: reactions });
    }
    this.metrics.listeners.set({ kind: 'virtual' }, virtual);
  }

  private heartbeat(): void {
    for (const c of this.conns) {
      if (!c.alive) {
        this.metrics.heartbeatTerminations.inc();
        c.ws.terminate();
        continue;
      }
      c.alive = false;
      try {
        c.ws.ping();
      } catch {
        // the socket closed between the check and the ping; close handles cleanup
      }
    }
  }

  /** Closes every connection with `code` in batches, then terminates what is left at the deadline. */
  async closeAll(code: number, reason: string, deadlineMs: number): Promise<void> {
    await this.stop();
    const deadline = this.clock.now() + deadlineMs;
    const all = [...this.conns];
    for (let i = 0; i < all.length; i += this.config.closeBatchSize) {
      for (const c of all.slice(i, i + this.config.closeBatchSize)) c.ws.close(code, reason);
      await new Promise<void>((r) => setImmediate(r));
    }
    while (this.conns.size > 0 && this.clock.now() < deadline) {
      await Promise.race([
        Promise.all([...this.conns].map((c) => new Promise<void>((r) => (c.ws.readyState === c.ws.CLOSED ? r() : c.ws.once('close', () => r()))))),
        this.clock.sleep(Math.min(250, deadline - this.clock.now())),
      ]);
    }
    for (const c of [...this.conns]) {
      c.ws.terminate();
      this.detach(c);
    }
  }

  async stop(): Promise<void> {
    this.running = false;
    this.stopLoops.abort();
    await Promise.all(this.loops);
    this.loops = [];
  }
}
