import { once } from 'node:events';
import { createServer, connect, type Socket } from 'node:net';
import { PassThrough } from 'node:stream';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DenseSockets } from '../../src/server/dense-sockets.js';

describe('DenseSockets', () => {
  it('holds exactly the keys added and not deleted, each beside its own socket, slot and state, with no holes', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.constantFrom('add', 'delete', 'silence'), fc.integer({ min: 0, max: 15 })), { maxLength: 200 }), (ops) => {
        const streams = Array.from({ length: 16 }, () => new PassThrough());
        const d = new DenseSockets<number, PassThrough>();
        const model = new Map<number, { open: boolean }>();
        for (const [op, k] of ops) {
          if (op === 'add') {
            expect(d.add(k, streams[k]!, k * 10)).toBe(!model.has(k));
            if (!model.has(k)) model.set(k, { open: true });
          } else if (op === 'delete') {
            expect(d.delete(k)).toBe(model.has(k));
            model.delete(k);
          } else {
            expect(d.silence(k)).toBe(model.has(k));
            if (model.has(k)) model.get(k)!.open = false;
          }
          expect(d.size).toBe(model.size);
          expect(d.keys.length).toBe(model.size);
          expect(d.sockets.length).toBe(model.size);
        }
        expect(new Set(d.keys)).toEqual(new Set(model.keys()));
        const slots = new Set<number>();
        for (let i = 0; i < d.size; i++) {
          const k = d.keys[i]!;
          const slot = d.slots[i]!;
          slots.add(slot);
          expect(d.sockets[i]).toBe(streams[k]);
          // what the fan-out reads by slot belongs to the same entry
          expect(d.socketsBySlot[slot]).toBe(streams[k]);
          expect(d.keyOf(slot)).toBe(k);
          expect(d.after[slot]).toBe(k * 10);
          expect(d.open[slot]).toBe(model.get(k)!.open ? 1 : 0);
        }
        // every entry has a slot of its own
        expect(slots.size).toBe(d.size);
        for (const k of model.keys()) expect(d.has(k)).toBe(true);
      }),
      { numRuns: 100 },
    );
  });

  it('iterates over a copy, so every listener can be closed while walking them', () => {
    const d = new DenseSockets<string, PassThrough>();
    for (const k of ['a', 'b', 'c', 'd']) d.add(k, new PassThrough());
    const seen: string[] = [];
    for (const k of d) {
      seen.push(k);
      d.delete(k);
    }
    expect(seen.sort()).toEqual(['a', 'b', 'c', 'd']);
    expect(d.size).toBe(0);
  });

  it('writes one buffer to every socket, and a socket that left gets nothing more', async () => {
    const d = new DenseSockets<Socket, Socket>();
    const server = createServer((s) => {
      d.add(s, s);
      // the client that leaves first resets its connection
      s.on('error', () => s.destroy());
      s.on('close', () => d.delete(s));
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const port = (server.address() as { port: number }).port;
    try {
      const clients = await Promise.all(
        Array.from({ length: 3 }, async () => {
          const c = connect(port, '127.0.0.1');
          c.on('error', () => c.destroy());
          await once(c, 'connect');
          return c;
        }),
      );
      while (d.size < 3) await new Promise((r) => setImmediate(r));
      const got = clients.map((c) => {
        let text = '';
        c.on('data', (b: Buffer) => (text += b.toString()));
        return () => text;
      });
      d.writeAll(Buffer.from('one;'));
      clients[0]!.destroy();
      while (d.size > 2) await new Promise((r) => setImmediate(r));
      d.writeAll(Buffer.from('two;'));
      for (const c of clients.slice(1)) c.end();
      await Promise.all(clients.slice(1).map((c) => once(c, 'close')));
      expect(got[1]!()).toBe('one;two;');
      expect(got[2]!()).toBe('one;two;');
      expect(d.size).toBe(0);
    } finally {
      for (const s of d.clear()) s.destroy();
      server.close();
    }
  });
});
