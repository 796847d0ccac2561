import type { IncomingMessage, Server } from 'node:http';
import type { AddressInfo, Server as NetServer, Socket } from 'node:net';
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import type { Duplex } from 'node:stream';
import { encodeAudioChunk } from '../../src/protocol/index.js';
import { DenseSockets } from '../../src/server/dense-sockets.js';
import { binaryFrame } from '../../src/server/preframed.js';
import { answer, memReading, monoMs } from '../lib/proc.js';

/**
 * What every bench server child does besides serving: start and stop the audio (so the servers of one
 * size can stay connected while each is measured in turn), report its own CPU time split into user and
 * system, its RSS, and how its ticks kept to their cadence.
 */
export interface ServerHandle {
  port: number;
  spaceId?: string;
  /** Sends one chunk to every listener; absent for servers with no audio (the HTTP baselines). */
  broadcast?: (chunk: Buffer) => void;
  stop(): Promise<void>;
}

export interface Mark {
  userMicros: number;
  systemMicros: number;
  /** Ticks run since the previous mark, and how late the latest of them ran after its due time. */
  ticks: number;
  maxLateMs: number;
}

/** The same 516-byte audio chunk every contestant sends: five 100-byte frames, one chunk per 100 ms. */
const FRAMES = Array.from({ length: 5 }, (_, i) => Uint8Array.from({ length: 100 }, (_, j) => (i * 31 + j * 7) & 0xff));
export const CHUNK_INTERVAL_MS = 100;

/**
 * How the HTTP baselines redeem a join ticket: the way Stampede does, by an upgrade request naming it.
 * No WebSocket follows, so every upgrade is answered 400 — with an empty body when `redeem` knew the
 * ticket and a 1-byte body when it did not, so a client can tell the two apart.
 */
export function redeemTicketsOnUpgrade(http: Pick<Server, 'on'> | NodeJS.EventEmitter, redeem: (ticket: string) => boolean): void {
  (http as NodeJS.EventEmitter).on('upgrade', (req: IncomingMessage, socket: Duplex) => {
    const ok = redeem(new URL(req.url ?? '/', 'http://x').searchParams.get('ticket') ?? '');
    socket.end(`HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: ${ok ? 0 : 1}\r\n\r\n${ok ? '' : '?'}`);
  });
}

/**
 * The floors' shared part: `server` listens on loopback, and `accept` hands each listener's socket to
 * `add` (as it connects, or once ws has taken its handshake). Each chunk is framed ONCE and that one
 * buffer is written to every socket from the same dense socket array Stampede's fan-out walks.
 */
export async function frameOnceServer(server: NetServer, accept: (add: (socket: Socket) => void) => void): Promise<ServerHandle> {
  const sockets = new DenseSockets<Socket, Socket>();
  accept((socket) => {
    sockets.add(socket, socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    broadcast: (buf) => sockets.writeAll(binaryFrame(buf)),
    stop: async () => {
      for (const s of sockets.clear()) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/**
 * A chunk every 100 ms, scheduled from the start so a late tick does not push later ones back. Each
 * chunk is stamped with its DUE time on the machine's monotonic clock, so a tick that runs late shows
 * in the listeners' latency instead of hiding in it.
 */
export class Ticker {
  private timer: NodeJS.Timeout | null = null;
  private seq = 0;
  ticks = 0;
  maxLateMs = 0;

  /** `wallClock`: stamp chunks with the due time on the wall clock (Date.now()), as a real host does, for clients that measure with it (`stampede load`). */
  constructor(
    private readonly broadcast: (chunk: Buffer) => void,
    private readonly wallClock = false,
  ) {}

  start(): void {
    if (this.timer) return;
    const t0 = monoMs();
    const stamp = this.wallClock ? Date.now() - t0 : 0;
    let k = 0;
    const tick = (): void => {
      const due = t0 + k * CHUNK_INTERVAL_MS;
      this.maxLateMs = Math.max(this.maxLateMs, monoMs() - due);
      this.ticks++;
      this.broadcast(encodeAudioChunk({ seq: this.seq++, captureMs: due + stamp, frames: FRAMES }));
      k++;
      this.timer = setTimeout(tick, Math.max(0, t0 + k * CHUNK_INTERVAL_MS - monoMs()));
    };
    tick();
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }
}

export function serveChild(start: () => Promise<ServerHandle>): void {
  const started = start();
  let ticker: Ticker | null = null;
  let loop: IntervalHistogram | null = null;
  answer(
    {
      info: async () => {
        const h = await started;
        return { port: h.port, ...(h.spaceId ? { spaceId: h.spaceId } : {}) };
      },
      audio: async (m) => {
        const h = await started;
        if (!h.broadcast) throw new Error('this server sends no audio');
        ticker ??= new Ticker(h.broadcast, m.wallClock === true);
        if (m.on) ticker.start();
        else ticker.stop();
        return {};
      },
      mark: (): Mark => {
        const u = process.cpuUsage();
        const m = { userMicros: u.user, systemMicros: u.system, ticks: ticker?.ticks ?? 0, maxLateMs: ticker?.maxLateMs ?? 0 };
        if (ticker) {
          ticker.ticks = 0;
          ticker.maxLateMs = 0;
        }
        return m;
      },
      mem: () => memReading(),
      // the event loop's delay since the last call (p99 and max, ms); the first call starts sampling (10 ms resolution)
      loop: () => {
        loop ??= monitorEventLoopDelay({ resolution: 10 });
        loop.enable();
        const r = { p99Ms: loop.count ? loop.percentile(99) / 1e6 : 0, maxMs: loop.count ? loop.max / 1e6 : 0 };
        loop.reset();
        return r;
      },
    },
    async () => {
      ticker?.stop();
      await (await started).stop();
    },
  );
}
