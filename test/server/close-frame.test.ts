import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { connect as tcpConnect, type Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { encodeAudioChunk, peekAudioHeader } from '../../src/protocol/index.js';
import { api, connectHost, createSpace, joinAndConnect, startSpace, useApps } from '../helpers/app.js';

function chunk(seq: number): Buffer {
  return encodeAudioChunk({ seq, captureMs: Date.now(), frames: Array.from({ length: 5 }, () => new Uint8Array(100).fill(seq & 0xff)) });
}

interface Frame {
  opcode: number;
  payload: Buffer;
}

/** A client → server frame (RFC 6455 §5.2): FIN, the opcode, a 7-bit length, masked. */
function clientFrame(opcode: number, payload: Buffer): Buffer {
  if (payload.length > 125) throw new Error('short frames only');
  const mask = randomBytes(4);
  const masked = Buffer.from(payload.map((b, i) => b ^ mask[i % 4]!));
  return Buffer.concat([Buffer.from([0x80 | opcode, 0x80 | payload.length]), mask, masked]);
}

function closePayload(code: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(code);
  return b;
}

/**
 * A listener on a raw TCP socket: it does the upgrade itself and keeps every byte the server sends, so a
 * test can read the frames in the order they were written (a WebSocket library stops reading at the close).
 */
async function rawListener(url: string, spaceId: string): Promise<{ socket: Socket; frames: () => Frame[]; ended: Promise<unknown>; until(pred: (f: Frame[]) => boolean): Promise<void> }> {
  const r = await api<{ wsUrl: string }>(url, 'POST', `/api/v1/spaces/${spaceId}/join`);
  const ws = new URL(r.body.wsUrl);
  const socket = tcpConnect(Number(ws.port), ws.hostname);
  await once(socket, 'connect');
  socket.write(`GET ${ws.pathname}${ws.search} HTTP/1.1\r\nHost: ${ws.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`);
  let bytes = Buffer.alloc(0);
  const waiters = new Set<() => void>();
  socket.on('data', (b: Buffer) => {
    bytes = Buffer.concat([bytes, b]);
    for (const w of [...waiters]) w();
  });
  const ended = once(socket, 'end');
  const frames = (): Frame[] => {
    const head = bytes.indexOf('\r\n\r\n');
    if (head < 0) return [];
    expect(bytes.subarray(0, 12).toString()).toBe('HTTP/1.1 101');
    const out: Frame[] = [];
    let at = head + 4;
    while (at + 2 <= bytes.length) {
      const b1 = bytes[at + 1]!;
      // the server never masks (RFC 6455 §5.1)
      expect(b1 & 0x80).toBe(0);
      let len = b1 & 0x7f;
      let start = at + 2;
      if (len === 126) {
        if (start + 2 > bytes.length) break;
        len = bytes.readUInt16BE(start);
        start += 2;
      } else if (len === 127) {
        if (start + 8 > bytes.length) break;
        len = Number(bytes.readBigUInt64BE(start));
        start += 8;
      }
      if (start + len > bytes.length) break;
      out.push({ opcode: bytes[at]! & 0x0f, payload: bytes.subarray(start, start + len) });
      at = start + len;
    }
    return out;
  };
  const until = (pred: (f: Frame[]) => boolean): Promise<void> =>
    new Promise((resolve) => {
      const check = (): void => {
        if (!pred(frames())) return;
        waiters.delete(check);
        resolve();
      };
      waiters.add(check);
      check();
    });
  return { socket, frames, ended, until };
}

const CLOSE_OP = 0x8;
const isClose = (f: Frame): boolean => f.opcode === CLOSE_OP;

describe('no data frame after the close frame (RFC 6455 §5.5.1), read from the raw bytes', () => {
  const startApp = useApps();

  /** A live space with a raw listener and a ws listener that have both heard chunk 0 from the host. */
  async function onAir() {
    const s = await startApp();
    const { id, hostToken } = await createSpace(s.url);
    await startSpace(s.url, id, hostToken);
    const raw = await rawListener(s.url, id);
    const other = await joinAndConnect(s.url, id, 'other');
    const host = await connectHost(s.url, id, hostToken);
    host.ws.send(chunk(0));
    await raw.until((fs) => fs.some((f) => f.opcode === 0x2));
    return { raw, other, host };
  }

  it('a listener the server closed hears no more audio while it has not answered, and the close frame is the last frame it gets', async () => {
    const { raw, other, host } = await onAir();
    // ten messages that are not JSON: the server closes the listener with 1008 and waits for its answer
    raw.socket.write(Buffer.concat(Array.from({ length: 10 }, () => clientFrame(0x1, Buffer.from('not json')))));
    await raw.until((fs) => fs.some(isClose));
    // the fan-out goes on for the others while the closed listener has not answered
    for (let i = 1; i <= 5; i++) host.ws.send(chunk(i));
    await other.until((c) => c.binaries.some((b) => peekAudioHeader(b)?.seq === 5), 'chunk 5');
    raw.socket.write(clientFrame(CLOSE_OP, closePayload(1000)));
    await raw.ended;
    const fs = raw.frames();
    const at = fs.findIndex(isClose);
    expect(fs[at]!.payload.readUInt16BE(0)).toBe(1008);
    expect(fs.slice(at + 1)).toEqual([]);
    expect(fs.filter((f) => f.opcode === 0x2).map((f) => peekAudioHeader(f.payload)?.seq)).toEqual([0]);
    raw.socket.destroy();
  });

  it("after a listener's own close frame, the server answers with its close frame and sends nothing after it, while audio flows", async () => {
    const { raw, other, host } = await onAir();
    // the listener's close frame lands among chunks coming in
    for (let i = 1; i <= 3; i++) host.ws.send(chunk(i));
    raw.socket.write(clientFrame(CLOSE_OP, closePayload(1000)));
    for (let i = 4; i <= 8; i++) host.ws.send(chunk(i));
    await other.until((c) => c.binaries.some((b) => peekAudioHeader(b)?.seq === 8), 'chunk 8');
    await raw.ended;
    const fs = raw.frames();
    const at = fs.findIndex(isClose);
    expect(at).toBeGreaterThan(0);
    expect(fs[at]!.payload.readUInt16BE(0)).toBe(1000);
    expect(fs.slice(at + 1)).toEqual([]);
    // what it heard before its close frame went out is in order from the first chunk
    const heard = fs.filter((f) => f.opcode === 0x2).map((f) => peekAudioHeader(f.payload)?.seq);
    expect(heard).toEqual(heard.map((_, i) => i));
    raw.socket.destroy();
  });
});
