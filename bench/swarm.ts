import { randomBytes } from 'node:crypto';
import { request } from 'node:http';
import { connect as netConnect, type Socket as NetSocket } from 'node:net';
import hdr from 'hdr-histogram-js';
import { io as ioClient, type Socket } from 'socket.io-client';
import { WebSocket } from 'ws';
import { answer, monoMs, settledRss } from './lib/proc.js';

/**
 * One client swarm per contestant, in its own process pinned to the client CPUs: N listeners that count
 * the chunks they receive and record, in µs, the delay from the chunk's due time (stamped by the server
 * on the machine's monotonic clock) to its receipt. Counting happens only between `start` and `stop`.
 */
export type Flavor = 'stampede' | 'ws' | 'socketio' | 'net' | 'stampede-net';

const delay = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 120_000_000, numberOfSignificantValueDigits: 3 });
let received = 0;
let measuring = false;
const closers: (() => void)[] = [];

function onChunk(buf: Buffer, offset = 0): void {
  if (!measuring) return;
  received++;
  delay.recordValue(Math.max(1, Math.round((monoMs() - buf.readDoubleBE(offset + 8)) * 1000)));
}

function timeout<T>(p: Promise<T>, ms: number, onTimeout: () => void): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => {
        onTimeout();
        reject(new Error('connect timeout'));
      }, ms);
    }),
  ]);
}

/**
 * A raw TCP listener: reads unmasked frames (2- or 4-byte headers) off the stream and counts the binary
 * ones. For the node:net floor it connects and reads; with `upgrade` (a ws:// URL) it first makes a real
 * WebSocket handshake and skips the answer's head, so a WebSocket server is read by the same cheap reader
 * as the floor (flavor `stampede-net`: Stampede's listeners without ws's client-side cost).
 */
function netListener(base: string, upgrade?: string): Promise<void> {
  const { hostname, port } = new URL(upgrade ?? base);
  const s: NetSocket = netConnect(Number(port), hostname);
  let pending: Buffer = Buffer.alloc(0);
  let head = upgrade !== undefined;
  let opened: () => void = () => undefined;
  let failed: (e: Error) => void = () => undefined;
  s.on('data', (d: Buffer) => {
    let buf = pending.length ? Buffer.concat([pending, d]) : d;
    let o = 0;
    if (head) {
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) {
        pending = buf;
        return;
      }
      if (!buf.subarray(0, 12).toString('latin1').startsWith('HTTP/1.1 101')) return failed(new Error(`upgrade refused: ${buf.subarray(0, 40).toString('latin1')}`));
      head = false;
      o = end + 4;
      opened();
    }
    for (;;) {
      if (buf.length - o < 2) break;
      const len7 = buf[o + 1]! & 0x7f;
      const hl = len7 === 126 ? 4 : 2;
      if (buf.length - o < hl) break;
      const len = len7 === 126 ? buf.readUInt16BE(o + 2) : len7;
      if (buf.length - o < hl + len) break;
      if ((buf[o]! & 0x0f) === 2) onChunk(buf, o + hl);
      o += hl + len;
    }
    pending = o < buf.length ? buf.subarray(o) : Buffer.alloc(0);
    buf = pending;
  });
  s.on('error', () => undefined);
  closers.push(() => s.destroy());
  return timeout(new Promise<void>((resolve, reject) => {
    failed = (e) => {
      s.destroy();
      reject(e);
    };
    s.once('error', reject);
    if (upgrade === undefined) s.once('connect', () => resolve());
    else {
      opened = resolve;
      const u = new URL(upgrade);
      s.once('connect', () =>
        s.write(`GET ${u.pathname}${u.search} HTTP/1.1\r\nhost: ${u.host}\r\nupgrade: websocket\r\nconnection: Upgrade\r\nsec-websocket-key: ${randomBytes(16).toString('base64')}\r\nsec-websocket-version: 13\r\n\r\n`),
      );
    }
  }), 10_000, () => s.destroy());
}

/**
 * A listener's join over a connection of its own that closes after the answer (as a browser's would go
 * idle), so no keep-alive socket from the join is left on the server when its memory is read.
 */
function join(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'POST', agent: false, headers: { connection: 'close' } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => (res.statusCode === 200 ? resolve((JSON.parse(body) as { wsUrl: string }).wsUrl) : reject(new Error(`join refused: ${res.statusCode}`))));
    });
    req.on('error', reject);
    req.setTimeout(10_000, () => req.destroy(new Error('join timeout')));
    req.end();
  });
}

async function one(flavor: Flavor, base: string, spaceId?: string): Promise<void> {
  if (flavor === 'net') return netListener(base);
  if (flavor === 'stampede-net') return netListener(base, await join(`${base}/api/v1/spaces/${spaceId}/join`));
  if (flavor === 'socketio') {
    const s: Socket = ioClient(base, { transports: ['websocket'], reconnection: false, forceNew: true, timeout: 10_000 });
    s.on('audio', (b: Buffer) => onChunk(Buffer.isBuffer(b) ? b : Buffer.from(b)));
    closers.push(() => s.disconnect());
    return new Promise<void>((resolve, reject) => {
      s.once('connect', () => resolve());
      s.once('connect_error', (err) => {
        s.disconnect();
        reject(err);
      });
    });
  }
  let url = base.replace(/^http/, 'ws');
  if (flavor === 'stampede') url = await join(`${base}/api/v1/spaces/${spaceId}/join`);
  const ws = new WebSocket(url, { perMessageDeflate: false });
  ws.on('message', (d: Buffer, binary) => binary && onChunk(d));
  ws.on('error', () => undefined);
  closers.push(() => ws.terminate());
  return timeout(new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  }), 10_000, () => ws.terminate());
}

answer(
  {
    /** Connects up to n listeners, 100 at a time, within budgetMs; answers how many connected. */
    connect: async (m) => {
      const { flavor, url, n, spaceId, budgetMs } = m as unknown as { flavor: Flavor; url: string; n: number; spaceId?: string; budgetMs: number };
      const deadline = Date.now() + budgetMs;
      let connected = 0;
      let failed = 0;
      for (let i = 0; i < n && Date.now() < deadline; i += 100) {
        const rs = await Promise.allSettled(Array.from({ length: Math.min(100, n - i) }, () => one(flavor, url, spaceId)));
        for (const r of rs) r.status === 'fulfilled' ? connected++ : failed++;
      }
      return { connected, failed };
    },
    start: () => {
      received = 0;
      delay.reset();
      measuring = true;
      return {};
    },
    stop: () => {
      measuring = false;
      const ms = (p: number) => delay.getValueAtPercentile(p) / 1000;
      return { received, p50Ms: ms(50), p99Ms: ms(99), p999Ms: ms(99.9), maxMs: delay.maxValue / 1000 };
    },
    mem: () => ({ rss: settledRss() }),
    close: () => {
      for (const c of closers.splice(0)) c();
      return {};
    },
  },
  async () => {
    for (const c of closers.splice(0)) c();
  },
);
