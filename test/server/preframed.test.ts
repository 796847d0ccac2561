import { once } from 'node:events';
import { createServer } from 'node:http';
import type { Duplex } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import { binaryFrame } from '../../src/server/preframed.js';

describe('encode-once fan-out (binaryFrame written to the upgraded socket)', () => {
  it('frames with the RFC 6455 header at each length class: FIN + binary, unmasked, 7-, 16- or 64-bit length', () => {
    // the header bytes written out by hand from RFC 6455 §5.2 (what the hand-built framing wrote before ws's Sender.frame)
    const headers: [number, number[]][] = [
      [0, [0x82, 0]],
      [1, [0x82, 1]],
      [125, [0x82, 125]],
      [126, [0x82, 126, 0x00, 0x7e]],
      [127, [0x82, 126, 0x00, 0x7f]],
      [65535, [0x82, 126, 0xff, 0xff]],
      [65536, [0x82, 127, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00]],
      [70_000, [0x82, 127, 0, 0, 0, 0, 0, 0x01, 0x11, 0x70]],
    ];
    for (const [n, head] of headers) {
      const payload = Buffer.alloc(n, 0xab);
      const frame = binaryFrame(payload);
      expect([n, [...frame.subarray(0, head.length)]]).toEqual([n, head]);
      expect(frame.length).toBe(head.length + n);
      expect(frame.subarray(head.length).equals(payload)).toBe(true);
    }
  });

  it('a real client reads every pre-built frame back byte for byte, at every length class, in order with ws\'s own sends', async () => {
    const lengths = [0, 1, 125, 126, 127, 1000, 65535, 65536, 70_000];
    // as the server does it: ws takes the handshake, the frames go to the socket node:http handed to 'upgrade'
    const http = createServer();
    const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });
    const served = new Promise<void>((resolve) =>
      http.on('upgrade', (req, socket: Duplex, head) =>
        wss.handleUpgrade(req, socket, head, (ws) => {
          ws.send('first');
          for (const n of lengths) socket.write(binaryFrame(Buffer.alloc(n, n & 0xff)));
          ws.send('last');
          resolve();
        }),
      ),
    );
    http.listen(0, '127.0.0.1');
    await once(http, 'listening');
    const client = new WebSocket(`ws://127.0.0.1:${(http.address() as { port: number }).port}`);
    try {
      const got: { data: Buffer; binary: boolean }[] = [];
      const all = new Promise<void>((resolve, reject) => {
        client.on('message', (data: Buffer, binary) => {
          got.push({ data, binary });
          if (got.length === lengths.length + 2) resolve();
        });
        client.on('error', reject);
      });
      await served;
      await all;
      expect(got.map((m) => m.binary)).toEqual([false, ...lengths.map(() => true), false]);
      expect([got[0]!.data.toString(), got.at(-1)!.data.toString()]).toEqual(['first', 'last']);
      const frames = got.slice(1, -1);
      expect(frames.map((m) => m.data.length)).toEqual(lengths);
      for (const [i, n] of lengths.entries()) expect(frames[i]!.data.equals(Buffer.alloc(n, n & 0xff)), `length ${n}`).toBe(true);
    } finally {
      client.terminate();
      await new Promise((r) => wss.close(r));
      http.closeAllConnections();
      await new Promise((r) => http.close(r));
    }
  });
});
