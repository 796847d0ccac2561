import type { Duplex } from 'node:stream';
import type { Clock } from '../clock.js';
import type { ServerConfig } from '../config.js';
import type { ServerMetrics } from '../metrics/index.js';
import type { Role, Space } from '../space/index.js';
import { Liveness, MessageLimiter } from '../guard/index.js';
import { CLOSE } from '../protocol/index.js';
import type { AudioSocket } from './audio-socket.js';
import { DenseSockets } from './dense-sockets.js';

/** One open WebSocket and what the server knows about it. */
export interface Conn {
  id: string;
  /** Made by the server's WebSocketServer: it tells the fan-out when it stops taking data frames. */
  ws: AudioSocket;
  /** The upgraded TCP socket `ws` runs on (node:http's 'upgrade' socket): the fan-out writes audio frames to it. */
  socket: Duplex;
  space: Space;
  role: Role;
  ip: string;
  /** Heartbeat: only a pong echoing our last ping's payload counts (docs/reliability.md #20). */
  liveness: Liveness;
  /** Per-kind message rates (docs/reliability.md #21). */
  limiter: MessageLimiter;
  /** The server has closed (or is closing) this connection: nothing more it sends is acted on. */
  closing: boolean;
  badMessages: number;
  closed: boolean;
  /** The close code the server sent for a protocol violation; the peer's socket often just drops (1006). */
  violation: number;
}

interface Room {
  /** A dense array the audio fan-out walks by index (swap-removed on leave; silenced once a close frame went). */
  listeners: DenseSockets<Conn>;
  host: Conn | null;
}

const NO_LISTENERS: DenseSockets<Conn> = new DenseSockets();

/**
 * Every open connection: the registry (by space: the host and the listeners), counts per client address,
 * heartbeats and closing them all at shutdown. Sockets come in and leave here; what they say is dispatch's
 * business and what they hear is the audio plane's.
 */
export class Connections {
  private readonly conns = new Set<Conn>();
  private readonly rooms = new Map<string, Room>();
  private readonly perAddress = new Map<string, number>();
  private nextConnId = 1;

  constructor(
    private readonly config: ServerConfig,
    private readonly clock: Clock,
    private readonly metrics: ServerMetrics,
    /** Bytes queued for a socket that ws does not see: what the fan-out's direct writes left in libuv (`AudioPlane.queuedBeside`). */
    private readonly queuedBeside: (socket: Duplex) => number = () => 0,
  ) {}

  get count(): number {
    return this.conns.size;
  }

  from(ip: string): number {
    return this.perAddress.get(ip) ?? 0;
  }

  listenersOf(spaceId: string): DenseSockets<Conn> {
    return this.rooms.get(spaceId)?.listeners ?? NO_LISTENERS;
  }

  hostOf(spaceId: string): Conn | null {
    return this.rooms.get(spaceId)?.host ?? null;
  }

  private room(spaceId: string): Room {
    let r = this.rooms.get(spaceId);
    if (!r) {
      r = { listeners: new DenseSockets(), host: null };
      this.rooms.set(spaceId, r);
    }
    return r;
  }

  /** Registers a socket (not yet in a room: `enter` puts it there once the space has taken it in). */
  add(ws: AudioSocket, socket: Duplex, space: Space, role: Role, ip: string): Conn {
    const n = this.nextConnId++;
    const conn: Conn = { id: `c${n}`, ws, socket, space, role, ip, liveness: new Liveness(n), limiter: new MessageLimiter(this.config.messageRates), closing: false, badMessages: 0, closed: false, violation: 0 };
    this.conns.add(conn);
    this.perAddress.set(ip, (this.perAddress.get(ip) ?? 0) + 1);
    this.metrics.wsConnections.set(this.conns.size);
    return conn;
  }

  /**
   * Puts a registered socket in its space's room; a new host connection replaces the old one (4002). A
   * listener back from another instance hears only chunks after `after` (`?after=<seq>`; −1: all).
   */
  enter(conn: Conn, replaced: (old: Conn) => void, after = -1): void {
    const room = this.room(conn.space.id);
    if (conn.role === 'host') {
      if (room.host) replaced(room.host);
      room.host = conn;
    } else {
      room.listeners.add(conn, conn.socket, after);
      conn.ws.watchClosing(room.listeners, conn);
      this.metrics.listeners.inc({ kind: 'real' });
    }
  }

  /** Cleanup for a connection; idempotent, because close and terminate paths may both run it. */
  remove(conn: Conn): void {
    if (conn.closed) return;
    conn.closed = true;
    this.conns.delete(conn);
    const n = (this.perAddress.get(conn.ip) ?? 1) - 1;
    if (n <= 0) this.perAddress.delete(conn.ip);
    else this.perAddress.set(conn.ip, n);
    const room = this.rooms.get(conn.space.id);
    if (room?.listeners.delete(conn)) this.metrics.listeners.dec({ kind: 'real' });
    if (room?.host === conn) room.host = null;
    conn.space.leave(conn.id);
    this.metrics.wsConnections.set(this.conns.size);
  }

  /**
   * The one outbound path for text (docs/reliability.md #19): a message that would take the connection's
   * queued bytes past `maxOutboundBytes` is not queued; the connection is closed with 4001 instead (the
   * close frame is the last thing queued). Audio has its own, lower threshold (the audio plane skips it).
   */
  send(conn: Conn, data: Buffer): void {
    const ws = conn.ws;
    if (conn.closing || ws.readyState !== 1) return;
    if (ws.bufferedAmount + this.queuedBeside(conn.socket) + data.length > this.config.maxOutboundBytes) {
      this.metrics.outboundOverflows.inc();
      // the peer has to read its way to the close frame: it gets as long as a slow consumer does
      this.shut(conn, CLOSE.SLOW_CONSUMER, 'outbound buffer over its cap', this.config.slowConsumerMs, true);
      return;
    }
    ws.send(data, { binary: false });
  }

  /** Sends a text message to everyone in a space (and its host unless told not to): encoded once, each through its bounded path. */
  broadcast(spaceId: string, text: string | Buffer, includeHost = true): void {
    const room = this.rooms.get(spaceId);
    if (!room) return;
    const data = typeof text === 'string' ? Buffer.from(text) : text;
    for (const c of room.listeners) this.send(c, data);
    if (includeHost && room.host) this.send(room.host, data);
  }

  /**
   * Closes a connection the server gives up on; what it sends from now on is ignored. A peer that does
   * not finish the close handshake within `graceMs` is cut rather than left to ws's 30 s close timer.
   * With `stopReading` (a flood, or a peer that does not read) its socket is not read any more: the
   * flood stops costing CPU, and the close frame we sent still reaches it.
   */
  shut(conn: Conn, code: number, reason: string, graceMs: number, stopReading = false): void {
    if (conn.closing) return;
    conn.closing = true;
    const ws = conn.ws;
    ws.close(code, reason);
    if (stopReading) ws.pause();
    const cut = setTimeout(() => ws.terminate(), graceMs);
    cut.unref();
    ws.once('close', () => clearTimeout(cut));
  }

  /** Closes a space's listeners and host with `code`, e.g. when it ends. */
  closeSpace(spaceId: string, code: number, listenerReason: string, hostReason: string): void {
    const room = this.rooms.get(spaceId);
    if (!room) return;
    for (const c of [...room.listeners]) c.ws.close(code, listenerReason);
    room.host?.ws.close(code, hostReason);
  }

  /** Pings everyone with a fresh payload; a peer that did not echo the previous one is terminated. */
  heartbeat(): void {
    for (const c of this.conns) {
      if (!c.liveness.alive) {
        this.metrics.heartbeatTerminations.inc();
        c.ws.terminate();
        continue;
      }
      try {
        c.ws.ping(c.liveness.nextPing());
      } catch {
        // the socket closed between the check and the ping; close handles cleanup
      }
    }
  }

  /** Closes every connection with `code` in batches, then terminates what is left at the deadline. */
  async closeAll(code: number, reason: string, deadlineMs: number): Promise<void> {
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
      this.remove(c);
    }
  }
}
