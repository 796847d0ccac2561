import type { Duplex } from 'node:stream';

/**
 * A fan-out write that skips Node's Writable stream layer when a socket has nothing queued: the frame goes
 * straight to the libuv handle's `writeBuffer`, which tries the write system call at once (`uv_try_write`)
 * and only queues in libuv what the kernel did not take. `socket.write` does the same underneath, after
 * `Writable.write` → `writeOrBuffer` → `Socket._write` → `_writeGeneric` (the idle timer) → `writeGeneric`
 * (a `WriteWrap` per write) → the write callback → `afterWrite` on the next tick.
 *
 * No public door exists for this: the handle (`socket._handle`) is Node's, and `WriteWrap` with the stream
 * state array come from `process.binding('stream_wrap')` (deprecated, DEP0111, documentation-only in Node
 * 20). Everything is looked up once and checked; where any of it is missing the writer is `null` and the
 * caller uses `socket.write`. `test/server/direct-write.test.ts` pins it to real sockets.
 *
 * A direct write is taken only when the socket is writable, has no idle timeout, nothing in its Writable
 * buffer and nothing in libuv's queue (`writeQueueSize`): the frame then lands behind everything written
 * before it. When the kernel takes only part of it, the rest waits in libuv's queue under a `WriteWrap` of
 * its own (the next write gets a fresh one), the frame is kept alive until that write completes, and every
 * later write to the socket, ours or Node's, queues behind it in libuv (`uv_try_write` refuses while
 * anything is queued): order holds. Bytes so queued are in `writeQueueSize`, not in `writableLength`, so a
 * caller that bounds a socket's backlog adds `pending(socket)`. A failed write destroys the socket with the
 * error, as Node's path does.
 */

interface WriteReq {
  buffer: Buffer | null;
  socket: Duplex | null;
  writer: DirectWriter | null;
  oncomplete: (this: WriteReq, status: number) => void;
}

interface StreamHandle {
  writeBuffer(req: WriteReq, data: Uint8Array): number;
  readonly writeQueueSize: number;
}

interface StreamWrapBinding {
  WriteWrap: new () => WriteReq;
  streamBaseState: Int32Array;
  kLastWriteWasAsync: number;
}

/** The parts of a net.Socket the writer reads; `_handle` and `timeout` are Node's own fields (no public door). */
interface RawSocket extends Duplex {
  _handle?: StreamHandle | null;
  timeout?: number;
  connecting?: boolean;
}

/** An async remainder finished (libuv calls `oncomplete` on its request): a failure destroys the socket as Node's own write does. */
function onRemainderDone(this: WriteReq, status: number): void {
  const { socket, writer } = this;
  this.buffer = null;
  this.socket = null;
  this.writer = null;
  if (socket && writer) writer.settled(socket, status);
}

export class DirectWriter {
  private req: WriteReq;
  /** Bytes of our own writes still in libuv's queue, by socket: only sockets whose write went in part are here. */
  private readonly remainders = new Map<Duplex, number>();
  /** Direct writes the kernel took only part of (their rest queued in libuv), since this writer was made. */
  partial = 0;

  private constructor(
    private readonly binding: StreamWrapBinding,
    private readonly errname: (code: number) => string,
  ) {
    this.req = this.fresh();
  }

  /**
   * The writer, or null where this Node does not have what it needs (`stream_wrap`'s `WriteWrap` and stream
   * state, a TCP handle's `writeBuffer` and `writeQueueSize`): then every write goes through `socket.write`.
   * `binding` is `process.binding` (a parameter so a test can take the internals away).
   */
  static create(binding: (name: string) => unknown = (name) => (process as unknown as { binding?: (n: string) => unknown }).binding?.(name)): DirectWriter | null {
    try {
      const b = binding('stream_wrap') as Partial<StreamWrapBinding> | undefined;
      const tcp = binding('tcp_wrap') as { TCP?: { prototype: object } } | undefined;
      const uv = binding('uv') as { errname?: (code: number) => string } | undefined;
      if (!b || typeof b.WriteWrap !== 'function' || !(b.streamBaseState instanceof Int32Array) || typeof b.kLastWriteWasAsync !== 'number') return null;
      const proto = tcp?.TCP?.prototype as Partial<StreamHandle> | undefined;
      if (!proto || typeof proto.writeBuffer !== 'function' || !('writeQueueSize' in proto)) return null;
      const errname = typeof uv?.errname === 'function' ? uv.errname : (code: number) => `E${-code}`;
      return new DirectWriter(b as StreamWrapBinding, errname);
    } catch {
      return null;
    }
  }

  /** Bytes of `socket` that this writer's partial writes left in libuv's queue (0 for nearly every socket): not in `writableLength`. */
  pending(socket: Duplex): number {
    return this.remainders.size === 0 ? 0 : (this.remainders.get(socket) ?? 0);
  }

  /**
   * Writes `data` to `socket` straight to its handle when nothing is queued anywhere and the socket takes
   * writes; false (nothing done) when the caller must use `socket.write` instead.
   */
  write(socket: Duplex, data: Buffer): boolean {
    const s = socket as RawSocket;
    const h = s._handle;
    if (!h || s.writableLength !== 0 || !s.writable || s.timeout || s.connecting || h.writeQueueSize !== 0) return false;
    const req = this.req;
    const err = h.writeBuffer(req, data);
    if (err !== 0) {
      s.destroy(this.error(err));
      return true;
    }
    if (this.binding.streamBaseState[this.binding.kLastWriteWasAsync] !== 0) {
      // the kernel took part of it: libuv holds the rest under this request (and the frame must live) until it is written
      this.partial++;
      req.buffer = data;
      req.socket = socket;
      req.writer = this;
      this.remainders.set(socket, h.writeQueueSize);
      this.req = this.fresh();
    }
    return true;
  }

  /** A partial write's rest is written (status 0) or failed. */
  settled(socket: Duplex, status: number): void {
    this.remainders.delete(socket);
    if (status < 0 && !socket.destroyed) socket.destroy(this.error(status));
  }

  /** Node's error for a failed write system call (the code from libuv's table, as Node names it). */
  private error(status: number): Error {
    const code = this.errname(status);
    return Object.assign(new Error(`write ${code}`), { errno: status, code, syscall: 'write' });
  }

  private fresh(): WriteReq {
    const req = new this.binding.WriteWrap();
    req.buffer = null;
    req.socket = null;
    req.writer = null;
    req.oncomplete = onRemainderDone;
    return req;
  }
}
