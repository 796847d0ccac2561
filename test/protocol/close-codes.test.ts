import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { systemClock } from '../../src/clock.js';
import { FaultRunner, parseFaultPlan } from '../../src/faults/index.js';
import { clientFrame, rawConnect } from '../../src/load/raw-client.js';
import { CLOSE, encodeAudioChunk, mayReconnect } from '../../src/protocol/index.js';
import { api, connect, connectHost, createSpace, joinAndConnect, metricValue, startSpace, useApps, type TestClient } from '../helpers/app.js';

/** The rows of the close-code table in docs/protocol.md: code and its "reconnect?" cell. */
function tableRows(): { code: number; reconnect: string }[] {
  const doc = readFileSync('docs/protocol.md', 'utf8');
  const table = doc.slice(doc.indexOf('### Close codes'), doc.indexOf('## Recording'));
  return [...table.matchAll(/^\| (\d{4}) \| [^|]+ \| ([^|]+) \|$/gm)].map((m) => ({ code: Number(m[1]), reconnect: m[2]!.trim() }));
}

describe('the close-code table in docs/protocol.md', () => {
  it('lists every code the server sends, with the reconnect rule the code follows', () => {
    const rows = tableRows();
    expect(rows.map((r) => r.code).sort()).toEqual(Object.values(CLOSE).map(Number).sort());
    for (const r of rows) {
      expect([r.code, r.reconnect.startsWith('yes')]).toEqual([r.code, mayReconnect(r.code)]);
    }
  });
});

describe('every code in the close-code table is sent by the real server, over a real socket', () => {
  const startApp = useApps();

  /** A server with a live space. */
  async function live(server: Parameters<typeof startApp>[0] = {}, opts: Parameters<typeof startApp>[1] = {}) {
    const s = await startApp(server, opts);
    const { id, hostToken } = await createSpace(s.url);
    await startSpace(s.url, id, hostToken);
    return { ...s, id, hostToken };
  }
  const code = async (c: TestClient): Promise<number> => (await c.closed).code;

  /** For each code in the table, what a client does (or the server's operator does) to get it, and the code the client then sees. */
  const provoke: Record<number, () => Promise<number>> = {
    [CLOSE.GOING_AWAY]: async () => {
      const s = await live();
      const l = await joinAndConnect(s.url, s.id);
      void s.close(); // the server stops
      return code(l);
    },
    [CLOSE.PROTOCOL_ERROR]: async () => {
      const s = await live();
      const r = await api<{ wsUrl: string }>(s.url, 'POST', `/api/v1/spaces/${s.id}/join`);
      const raw = await rawConnect(r.body.wsUrl);
      raw.socket.write(Buffer.from([0x81, 0x02, 0x68, 0x69])); // a client text frame without its mask
      raw.socket.end(); // after the frame: the server answers it, then sees the end
      await raw.closed;
      return raw.closeCode ?? 0;
    },
    [CLOSE.INVALID_PAYLOAD]: async () => {
      const s = await live();
      const l = await joinAndConnect(s.url, s.id);
      l.ws.send(Buffer.from([0xc3, 0x28]), { binary: false }); // a text message that is not UTF-8
      return code(l);
    },
    [CLOSE.POLICY]: async () => {
      const s = await live();
      const l = await joinAndConnect(s.url, s.id);
      for (let i = 0; i < 10; i++) l.ws.send('not a message');
      return code(l);
    },
    [CLOSE.TOO_BIG]: async () => {
      const s = await live();
      const l = await joinAndConnect(s.url, s.id);
      l.ws.send('x'.repeat(70 * 1024));
      return code(l);
    },
    [CLOSE.TRY_AGAIN_LATER]: async () => {
      let lagMs = 0;
      const s = await live({}, { loadSignal: { eventLoopLagMs: () => lagMs, heapUsedBytes: () => 0 } });
      const r = await api<{ wsUrl: string }>(s.url, 'POST', `/api/v1/spaces/${s.id}/join`);
      lagMs = 1_000; // the server is overloaded when the ticket is used
      const l = await connect(r.body.wsUrl);
      expect((await l.closed).reason).toBe('retry-after=2');
      return code(l);
    },
    [CLOSE.SLOW_CONSUMER]: async () => {
      // audio is queued for a listener up to one byte below the cap, so once a chunk is skipped its queue is at the cap:
      // the next text message for it (a pong, a count) would pass the cap, and closes it instead
      const cap = 64 * 1024;
      const s = await live({ maxOutboundBytes: cap, skipBufferedBytes: cap - 1, slowConsumerMs: 60_000 });
      // a raw client: once it reads again it sees the close frame at once (ws's client would wait for a handshake the server,
      // no longer reading the socket it gave up on, does not finish)
      const r = await api<{ wsUrl: string }>(s.url, 'POST', `/api/v1/spaces/${s.id}/join`);
      const l = await rawConnect(r.body.wsUrl);
      l.socket.pause(); // stops reading, as a stalled device does
      const host = await connectHost(s.url, s.id, s.hostToken);
      const frames = Array.from({ length: 12 }, () => new Uint8Array(1275).fill(7));
      const skipped = (): Promise<number> => metricValue(s.app, 'stampede_audio_chunks_dropped_total', { reason: 'backpressure' });
      const overflows = (): Promise<number> => metricValue(s.app, 'stampede_ws_outbound_overflows_total');
      const handled = async (): Promise<number> => (await metricValue(s.app, 'stampede_audio_chunks_sent_total')) + (await skipped());
      let seq = 0;
      while ((await skipped()) === 0 && (await overflows()) === 0) {
        for (const end = seq + 20; seq < end; seq++) host.ws.send(encodeAudioChunk({ seq, captureMs: Date.now(), frames }));
        await expect.poll(handled, { timeout: 30_000, interval: 20 }).toBe(seq);
      }
      l.socket.write(clientFrame(1, Buffer.from(JSON.stringify({ type: 'ping', id: 1 }))));
      await expect.poll(overflows, { timeout: 30_000, interval: 20 }).toBe(1);
      l.socket.resume(); // reads the queued audio, up to the close frame
      await expect.poll(() => l.closeCode, { timeout: 30_000, interval: 20 }).not.toBeNull();
      l.socket.destroy();
      return l.closeCode!;
    },
    [CLOSE.REPLACED]: async () => {
      const s = await live();
      const first = await connectHost(s.url, s.id, s.hostToken);
      await connectHost(s.url, s.id, s.hostToken);
      return code(first);
    },
    [CLOSE.SPACE_CRASHED]: async () => {
      const s = await live();
      const l = await joinAndConnect(s.url, s.id);
      // the way `serve --faults` and a replay crash a space: a fault plan's crash
      const runner = new FaultRunner({ plan: parseFaultPlan('faults:\n  - kind: crash\n    afterSeconds: 0\n', 'plan.yaml'), server: s.app.server, injector: null, clock: systemClock() });
      runner.start();
      try {
        return await code(l);
      } finally {
        await runner.stop();
      }
    },
    [CLOSE.SPACE_ENDED]: async () => {
      const s = await live();
      const l = await joinAndConnect(s.url, s.id);
      expect((await api(s.url, 'POST', `/api/v1/spaces/${s.id}/end`, {}, { authorization: `Bearer ${s.hostToken}` })).status).toBe(200);
      return code(l);
    },
  };

  it('has a way to provoke each code the table lists, and no other', () => {
    expect(Object.keys(provoke).map(Number).sort()).toEqual(tableRows().map((r) => r.code).sort());
  });

  for (const [listed, run] of Object.entries(provoke)) {
    it(`sends ${listed}`, async () => {
      expect(await run()).toBe(Number(listed));
    });
  }
});
