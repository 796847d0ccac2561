import type { RawData } from 'ws';
import type { MessageRateKind, ServerConfig } from '../config.js';
import type { ServerMetrics } from '../metrics/index.js';
import { CLOSE, decodeClientMessage, encodeServerMessage, type ServerMessage } from '../protocol/index.js';
import { DomainError } from '../space/index.js';
import type { Conn, Connections } from './connections.js';

/** Sends one message to one connection through its bounded outbound path. */
export function sendTo(connections: Connections, conn: Conn, msg: ServerMessage): void {
  connections.send(conn, Buffer.from(encodeServerMessage(msg)));
}

/**
 * Message dispatch: what a client's messages do. Binary messages are the host's audio (handed to
 * `ingestAudio`), text messages are decoded and applied to the space; anything wrong is answered with a
 * coded `error`, and the tenth wrong message closes the socket with 1008.
 */
export class Dispatch {
  constructor(
    private readonly config: ServerConfig,
    private readonly metrics: ServerMetrics,
    private readonly connections: Connections,
    private readonly ingestAudio: (conn: Conn, buf: Buffer) => string | null,
    private readonly now: () => number,
  ) {}

  private reject(conn: Conn, code: string, message: string): void {
    this.metrics.protocolErrors.inc({ code });
    conn.badMessages++;
    if (conn.badMessages >= this.config.maxBadMessages) {
      this.connections.shut(conn, CLOSE.POLICY, 'too many bad messages', this.config.slowConsumerMs);
      return;
    }
    sendTo(this.connections, conn, { type: 'error', code, message });
  }

  /** A rate-limit verdict: false when the message is dropped (counted), or the connection was just closed for abuse. */
  private admit(conn: Conn, kind: Exclude<MessageRateKind, 'abuse'>, now: number): boolean {
    const v = conn.limiter.check(kind, now);
    if (v === 'ok') return true;
    this.metrics.messagesDropped.inc({ kind });
    // a flood that keeps coming past the drops: closed with 1008, and its socket no longer read
    if (v === 'abuse') this.connections.shut(conn, CLOSE.POLICY, 'message rate', 1_000, true);
    return false;
  }

  onMessage(conn: Conn, data: RawData, isBinary: boolean): void {
    if (conn.closing) return;
    const buf = Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data);
    if (isBinary) {
      if (conn.role !== 'host') return this.reject(conn, 'FORBIDDEN', 'only the host sends audio');
      const err = this.ingestAudio(conn, buf);
      if (err) this.reject(conn, 'BAD_AUDIO', err);
      return;
    }
    // the rate limits (docs/reliability.md #21): all text first, before any decoding, then per kind
    const now = this.now();
    if (!this.admit(conn, 'any', now)) return;
    const r = decodeClientMessage(buf.toString('utf8'));
    if (!r.ok) return this.reject(conn, r.code, r.message);
    if (!this.admit(conn, r.msg.type, now)) return;
    const space = conn.space;
    try {
      switch (r.msg.type) {
        case 'ping':
          sendTo(this.connections, conn, { type: 'pong', id: r.msg.id });
          return;
        case 'react':
          space.react(r.msg.emoji);
          return;
        case 'request_speak': {
          const host = this.connections.hostOf(space.id);
          if (space.requestToSpeak(conn.id) && host) sendTo(this.connections, host, { type: 'speak_request', listenerId: conn.id, name: space.member(conn.id)?.name ?? '' });
          return;
        }
        case 'grant_speak':
          if (conn.role !== 'host') return this.reject(conn, 'FORBIDDEN', 'only the host grants the floor');
          space.grantSpeak(r.msg.listenerId);
          this.connections.broadcast(space.id, encodeServerMessage({ type: 'speakers', speakers: space.speakers() }));
          return;
      }
    } catch (err) {
      if (err instanceof DomainError) return this.reject(conn, err.code, err.message);
      throw err;
    }
  }
}
