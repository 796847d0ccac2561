import { randomBytes } from 'node:crypto';
import { connect as netConnect, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';

/**
 * A WebSocket client on a raw TCP socket, as an attacker would write one: the handshake by hand, then
 * frames built once and written back to back, so the flood is limited by the server, not by a client
 * library. Server frames are parsed only far enough to count texts and read the close code.
 */
export interface RawClient {
  socket: Socket;
  /** Text messages received so far. */
  texts: number;
  /** The close code of the server's close frame, once one arrived. */
  closeCode: number | null;
  closed: Promise<void>;
}

export function rawConnect(wsUrl: string, headers: Record<string, string> = {}): Promise<RawClient> {
  const u = new URL(wsUrl);
  const socket = netConnect(Number(u.port), u.hostname);
  const client: RawClient = { socket, texts: 0, closeCode: null, closed: new Promise((r) => socket.once('close', () => r())) };
  let buf: Buffer = Buffer.alloc(0);
  let upgraded = false;
  return new Promise((resolve, reject) => {
    socket.once('error', reject);
    socket.on('error', () => undefined);
    socket.once('connect', () => {
      const extra = Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('');
      socket.write(`GET ${u.pathname}${u.search} HTTP/1.1\r\nHost: ${u.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n${extra}\r\n`);
    });
    socket.on('data', (d: Buffer) => {
      buf = buf.length ? Buffer.concat([buf, d]) : d;
      if (!upgraded) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = buf.subarray(0, end).toString();
        if (!head.startsWith('HTTP/1.1 101')) {
          socket.destroy();
          return reject(new Error(`upgrade refused: ${head.split('\r\n')[0]}`));
        }
        upgraded = true;
        buf = buf.subarray(end + 4);
        resolve(client);
      }
      // server frames are never masked
      for (;;) {
        if (buf.length < 2) return;
        let len = buf[1]! & 0x7f;
        let off = 2;
        if (len === 126) {
          if (buf.length < 4) return;
          len = buf.readUInt16BE(2);
          off = 4;
        } else if (len === 127) {
          if (buf.length < 10) return;
          len = Number(buf.readBigUInt64BE(2));
          off = 10;
        }
        if (buf.length < off + len) return;
        const opcode = buf[0]! & 0x0f;
        if (opcode === 1) client.texts++;
        if (opcode === 8 && len >= 2) client.closeCode = buf.readUInt16BE(off);
        buf = buf.subarray(off + len);
      }
    });
  });
}

/** One masked client frame (a fixed mask: the server unmasks whatever the key). */
export function clientFrame(opcode: number, payload: Buffer): Buffer {
  const mask = Buffer.from([0x12, 0x34, 0x56, 0x78]);
  const len = payload.length;
  const head = len < 126 ? Buffer.from([0x80 | opcode, 0x80 | len]) : Buffer.from([0x80 | opcode, 0x80 | 126, len >> 8, len & 255]);
  const body = Buffer.from(payload.map((b, i) => b ^ mask[i % 4]!));
  return Buffer.concat([head, mask, body]);
}

/** Writes `frame` back to back for at most `ms` (or `max` frames), as fast as the socket drains. */
export async function floodRaw(socket: Socket, frame: Buffer, ms: number, max: number, signal?: AbortSignal): Promise<number> {
  const per = Math.max(1, Math.floor(64 * 1024 / frame.length));
  const block = Buffer.concat(Array.from({ length: per }, () => frame));
  let sent = 0;
  const until = performance.now() + ms;
  while (!socket.destroyed && performance.now() < until && sent < max && !signal?.aborted) {
    sent += per;
    if (!socket.write(block)) {
      await new Promise<void>((r) => {
        const done = (): void => {
          clearTimeout(timer);
          socket.off('drain', done);
          r();
        };
        const timer = setTimeout(done, 50);
        socket.once('drain', done);
      });
    }
  }
  return sent;
}
