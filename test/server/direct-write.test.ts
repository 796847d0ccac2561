import { once } from 'node:events';
import { createServer, connect, type AddressInfo, type Server, type Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { DirectWriter } from '../../src/server/direct-write.js';
import { useCleanup } from '../helpers/cleanup.js';

/** A loopback server on port 0 and one client: the server's side of the accepted socket, and the client's. */
async function pair(cleanup: (() => Promise<unknown>)[]): Promise<{ server: Socket; client: Socket }> {
  const srv: Server = createServer();
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  cleanup.push(() => new Promise((r) => srv.close(r)));
  const accepted = once(srv, 'connection') as Promise<[Socket]>;
  const client = connect((srv.address() as AddressInfo).port, '127.0.0.1');
  await once(client, 'connect');
  const [server] = await accepted;
  server.on('error', () => undefined);
  client.on('error', () => undefined);
  cleanup.push(async () => {
    client.destroy();
    server.destroy();
  });
  return { server, client };
}

/** Reads from `client` until `n` bytes came. */
async function readBytes(client: Socket, n: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  let got = 0;
  client.resume();
  for await (const d of client) {
    parts.push(d as Buffer);
    got += (d as Buffer).length;
    if (got >= n) break;
  }
  return Buffer.concat(parts);
}

/** Frame `i`: `size` bytes, each the frame's own number, so order and loss show in the bytes. */
const frame = (i: number, size: number) => Buffer.alloc(size, i & 0xff);

describe('writing straight to the socket handle (DirectWriter)', () => {
  const cleanup = useCleanup();

  it('exists on this Node and keeps byte order with socket.write interleaved', async () => {
    const w = DirectWriter.create();
    expect(w).not.toBeNull();
    const { server, client } = await pair(cleanup);
    const frames = Array.from({ length: 60 }, (_, i) => frame(i, 100 + i));
    const total = frames.reduce((n, f) => n + f.length, 0);
    const reading = readBytes(client, total);
    let direct = 0;
    for (const [i, f] of frames.entries()) {
      // every third frame through Node's own path, the rest direct when nothing is queued
      if (i % 3 !== 0 && w!.write(server, f)) direct++;
      else server.write(f);
    }
    expect(Buffer.concat(frames).equals(await reading)).toBe(true);
    expect(direct).toBe(40);
    expect(w!.partial).toBe(0);
  });

  it('queues a partial write in libuv, counts it as pending, and then lets socket.write queue behind it in order (a listener that does not read)', async () => {
    const w = DirectWriter.create()!;
    const { server, client } = await pair(cleanup);
    client.pause();
    // 64 KiB frames into a peer that does not read: the kernel's buffers fill, and one write goes in part
    const frames: Buffer[] = [];
    let viaNode = 0;
    for (let i = 0; i < 400 && w.partial === 0; i++) {
      const f = frame(i, 65_536);
      frames.push(f);
      expect(w.write(server, f)).toBe(true);
    }
    expect(w.partial).toBe(1);
    // the rest of the partial write is in libuv's queue, not in the Writable's buffer
    expect(w.pending(server)).toBeGreaterThan(0);
    expect(server.writableLength).toBe(0);
    // nothing more goes direct while anything is queued: the caller falls back to socket.write
    const first = frames.length;
    for (let i = first; i < first + 5; i++) {
      const f = frame(i, 1_000);
      expect(w.write(server, f)).toBe(false);
      server.write(f);
      viaNode++;
      frames.push(f);
    }
    expect(viaNode).toBe(5);
    expect(server.writableLength).toBeGreaterThan(0);
    const total = frames.reduce((n, f) => n + f.length, 0);
    const got = await readBytes(client, total);
    expect(got.length).toBe(total);
    expect(got.equals(Buffer.concat(frames))).toBe(true);
    // once everything went out, direct writes resume
    await expect.poll(() => w.pending(server) + server.writableLength).toBe(0);
    expect(w.write(server, frame(1, 10))).toBe(true);
  });

  it('forgets a partial write whose socket is destroyed before the rest went out', async () => {
    const w = DirectWriter.create()!;
    const { server, client } = await pair(cleanup);
    client.pause();
    for (let i = 0; i < 400 && w.partial === 0; i++) expect(w.write(server, frame(i, 65_536))).toBe(true);
    expect(w.partial).toBe(1);
    expect(w.pending(server)).toBeGreaterThan(0);
    server.destroy();
    // libuv cancels the queued rest and reports it: nothing is kept for the socket
    await expect.poll(() => w.pending(server)).toBe(0);
    expect(w.write(server, frame(0, 10))).toBe(false);
  });

  it('leaves a socket that is closing, destroyed or has an idle timeout to socket.write, and destroys one whose peer is gone with the write error', async () => {
    const w = DirectWriter.create()!;
    const a = await pair(cleanup);
    a.server.setTimeout(60_000);
    expect(w.write(a.server, frame(0, 10))).toBe(false);
    a.server.setTimeout(0);
    expect(w.write(a.server, frame(0, 10))).toBe(true);
    a.server.end();
    expect(w.write(a.server, frame(0, 10))).toBe(false);
    const b = await pair(cleanup);
    b.server.destroy();
    expect(w.write(b.server, frame(0, 10))).toBe(false);
    // the peer resets: a direct write fails in the kernel and the socket is destroyed with Node's error
    const c = await pair(cleanup);
    const errored = once(c.server, 'error') as Promise<[NodeJS.ErrnoException]>;
    // the reset reaches the server's socket in the kernel at once; its read callback has not run yet, so the write finds it
    c.client.resetAndDestroy();
    expect(w.write(c.server, frame(0, 1_000))).toBe(true);
    const [err] = await errored;
    expect(err.syscall).toBe('write');
    expect(['EPIPE', 'ECONNRESET']).toContain(err.code);
    expect(c.server.destroyed).toBe(true);
  });

  it('is null where the Node internals it needs are missing, so callers keep socket.write', () => {
    expect(DirectWriter.create(() => undefined)).toBeNull();
    expect(DirectWriter.create((name) => (name === 'stream_wrap' ? { WriteWrap: class {} } : undefined))).toBeNull();
    expect(
      DirectWriter.create(() => {
        throw new Error('No such module');
      }),
    ).toBeNull();
  });
});
