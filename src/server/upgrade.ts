import type { IncomingMessage } from 'node:http';
import { performance } from 'node:perf_hooks';
import type { Duplex } from 'node:stream';
import type { Server as WsServer } from 'ws';
import type { Clock } from '../clock.js';
import type { ServerConfig } from '../config.js';
import { bearer, originAllowed } from '../guard/index.js';
import { statusClass, type ServerMetrics } from '../metrics/index.js';
import { ApiError, CLOSE } from '../protocol/index.js';
import type { Role, Space, SpaceStore } from '../space/index.js';
import type { Shedder } from './admission.js';
import type { AudioSocket } from './audio-socket.js';
import type { Connections } from './connections.js';
import type { HostKeys } from './host-auth.js';
import { clientAddress, rejectUpgrade } from './http-util.js';

export interface UpgradeDeps {
  config: ServerConfig;
  clock: Clock;
  metrics: ServerMetrics;
  spaces: SpaceStore;
  /** Redeems a join ticket once: this instance's book, or in a cluster Redis. */
  takeTicket: (ticket: string) => Promise<{ spaceId: string; name: string } | null>;
  hostKeys: HostKeys;
  connections: Connections;
  shedder: Shedder;
  wss: WsServer<typeof AudioSocket>;
  draining(): boolean;
  attach(ws: AudioSocket, socket: Duplex, space: Space, role: Role, name: string, ip: string, after: number): void;
}

/** A browser cannot set headers on a WebSocket: it offers the host token as this subprotocol, beside `stampede.v1`. */
export const HOST_PROTOCOL_PREFIX = 'stampede.host.';
/** The subprotocol the server answers with; never the one carrying the token. */
export const PROTOCOL = 'stampede.v1';

/** The host token of an upgrade: `Authorization: Bearer <token>`, or a `stampede.host.<token>` subprotocol. */
export function hostTokenOf(req: IncomingMessage): string | null {
  const fromHeader = bearer(req.headers.authorization);
  if (fromHeader) return fromHeader;
  const offered = req.headers['sec-websocket-protocol'];
  if (typeof offered !== 'string' || offered.length > 512) return null;
  for (const p of offered.split(',')) {
    const t = p.trim();
    if (t.startsWith(HOST_PROTOCOL_PREFIX) && /^[A-Za-z0-9_-]{1,128}$/.test(t.slice(HOST_PROTOCOL_PREFIX.length))) return t.slice(HOST_PROTOCOL_PREFIX.length);
  }
  return null;
}

/** ws's `handleProtocols`: answer `stampede.v1` when offered, so a browser host's token subprotocol is never echoed. */
export function chooseProtocol(protocols: Set<string>): string | false {
  return protocols.has(PROTOCOL) ? PROTOCOL : false;
}

/**
 * An upgraded socket's error listener until ws takes it (node:http leaves it none): a socket that fails
 * while it waits is destroyed. A plain function, not a closure: the listener stays on the socket for the
 * connection's life, and a closure made where the upgrade arrives would keep that scope's request and its
 * head buffer alive with it (about 3 KiB per idle listener, issue #15).
 */
export function destroyOnError(this: Duplex): void {
  this.destroy();
}

/** Who a WebSocket upgrade is for, once admitted. */
interface Admitted {
  space: Space;
  role: 'host' | 'listener';
  name: string;
  after: number;
}

/**
 * WebSocket upgrade admission, before the handshake: the `/ws` path, draining, the global and per-address
 * connection caps, then either a join ticket (a listener) or the space id and host token (the host). A
 * refusal is a plain HTTP response; shedding after the handshake is a 1013 close a browser can read.
 */
export class Upgrades {
  constructor(private readonly d: UpgradeDeps) {}

  /** `socket` already has `destroyOnError` as its error listener (it may wait for its turn before this). */
  async handle(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    const t0 = performance.now();
    const { config, metrics } = this.d;
    let admitted: Admitted;
    const ip = clientAddress(req, config.trustedProxies);
    try {
      admitted = await this.admit(req, ip);
      // in a cluster the ticket is redeemed through Redis: the client may have gone meanwhile
      if (socket.destroyed) return;
    } catch (err) {
      const e = err instanceof ApiError ? err : new ApiError('INTERNAL');
      metrics.httpDuration.observe({ route: 'upgrade', status_class: statusClass(e.status) }, (performance.now() - t0) / 1000);
      return rejectUpgrade(socket, e);
    }
    this.d.wss.handleUpgrade(req, socket, head, (ws) => {
      metrics.httpDuration.observe({ route: 'upgrade', status_class: '1xx' }, (performance.now() - t0) / 1000);
      const shed = this.d.shedder.reason();
      if (shed) {
        // browsers cannot read an HTTP status from a failed upgrade; 1013 with a hint they can read
        ws.close(CLOSE.TRY_AGAIN_LATER, `retry-after=${Math.ceil(config.retryAfterMs / 1000)}`);
        metrics.wsCloses.inc({ code: String(CLOSE.TRY_AGAIN_LATER) });
        return;
      }
      this.d.attach(ws, socket, admitted.space, admitted.role, admitted.name, ip, admitted.after);
    });
  }

  private async admit(req: IncomingMessage, ip: string): Promise<Admitted> {
    const { config, connections } = this.d;
    const retryAfterMs = config.retryAfterMs;
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://x');
    } catch {
      throw new ApiError('BAD_REQUEST', 'the upgrade URL is malformed');
    }
    if (url.pathname !== '/ws') throw new ApiError('NOT_FOUND', `no WebSocket endpoint at ${url.pathname.slice(0, 100)}`);
    // a page from another site may not open sockets here (docs/reliability.md #26)
    if (!originAllowed(req.headers.origin, req.headers.host, config.allowedOrigins)) {
      throw new ApiError('ORIGIN_FORBIDDEN', `pages from ${String(req.headers.origin).slice(0, 100)} may not open sockets here (allowedOrigins)`);
    }
    if (this.d.draining()) throw new ApiError('DRAINING', undefined, { retryAfterMs });
    if (connections.count >= config.maxConnections) throw new ApiError('OVERLOADED', 'the server is at its connection cap', { retryAfterMs });
    if (connections.from(ip) >= config.maxConnectionsPerAddress) throw new ApiError('TOO_MANY_CONNECTIONS', undefined, { retryAfterMs });
    let space: Space | undefined;
    let role: 'host' | 'listener' = 'listener';
    let name = 'listener';
    // a listener coming back from another instance says the last chunk it heard: instances are not in lockstep
    const afterText = url.searchParams.get('after');
    if (afterText !== null && !/^\d{1,10}$/.test(afterText)) throw new ApiError('BAD_REQUEST', 'after is the sequence number of the last chunk heard, a whole number');
    const after = afterText === null ? -1 : Number(afterText);
    const ticketText = url.searchParams.get('ticket');
    const spaceId = url.searchParams.get('space');
    if (ticketText !== null) {
      const ticket = await this.d.takeTicket(ticketText);
      if (!ticket) throw new ApiError('TICKET_INVALID');
      space = this.d.spaces.get(ticket.spaceId);
      name = ticket.name;
    } else if (spaceId !== null) {
      space = this.d.spaces.get(spaceId);
      if (!space) throw new ApiError('SPACE_NOT_FOUND', `no space with id '${spaceId.slice(0, 64)}'`);
      // a token in a URL ends up in proxy and access logs (docs/reliability.md #26)
      if (url.searchParams.has('hostToken')) throw new ApiError('BAD_REQUEST', 'the host token goes in the Authorization header (or the stampede.host.<token> subprotocol), never in the URL');
      const token = hostTokenOf(req);
      if (!token) throw new ApiError('UNAUTHORIZED', 'the host connects with Authorization: Bearer <hostToken> (browsers: the subprotocols stampede.v1 and stampede.host.<hostToken>)');
      this.d.hostKeys.check(space.id, token);
      role = 'host';
      name = space.hostName;
    } else {
      throw new ApiError('TICKET_INVALID', 'connect with ?ticket=<ticket from a join>');
    }
    if (!space) throw new ApiError('SPACE_NOT_FOUND');
    if (space.state === 'ended') throw new ApiError('SPACE_ENDED');
    return { space, role, name, after };
  }
}
