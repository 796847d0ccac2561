import { describe, expect, it } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import { binaryFrame, sendFrame } from '../../src/server/preframed.js';

describe('encode-once fan-out (binaryFrame + sendFrame)', () => {
  it('a real client reads every pre-built frame back byte for byte, at every length class, in order', async () => {
    const lengths = [0, 1, 125, 126, 127, 1000, 65535, 65536, 70_000];
    const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
    await new Promise((r) => wss.once('listening', r));
    try {
      const port = (wss.address() as { port: number }).port;
      const sent = new Promise<boolean[]>((resolve) =>
        wss.once('connection', (ws) => resolve(lengths.map((n) => sendFrame(ws, binaryFrame(Buffer.alloc(n, n & 0xff)))))),
      );
      const client = new WebSocket(`ws://127.0.0.1:${port}`);
      const got: { data: Buffer; binary: boolean }[] = [];
      const all = new Promise<void>((resolve, reject) => {
        client.on('message', (data: Buffer, binary) => {
          got.push({ data, binary });
          if (got.length === lengths.length) resolve();
        });
        client.on('error', reject);
      });
      // an idle socket takes the fast path: every frame written as built, none through ws.send
      expect(await sent).toEqual(lengths.map(() => true));
      await all;
      expect(got.map((m) => m.binary)).toEqual(lengths.map(() => true));
      expect(got.map((m) => m.data.length)).toEqual(lengths);
      for (const [i, n] of lengths.entries()) expect(got[i]!.data.equals(Buffer.alloc(n, n & 0xff)), `length ${n}`).toBe(true);
      client.close();
    } finally {
      for (const c of wss.clients) c.terminate();
      await new Promise((r) => wss.close(r));
    }
  });
});
