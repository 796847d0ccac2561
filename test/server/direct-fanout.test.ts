import { describe, expect, it } from 'vitest';
import { encodeAudioChunk, peekAudioHeader } from '../../src/protocol/index.js';
import { connectHost, createSpace, joinAndConnect, metricValue, startSpace, useApps, type TestClient } from '../helpers/app.js';

/** A chunk of 12 Opus-sized frames (~15 KB), its bytes naming its sequence number. */
function bigChunk(seq: number): Buffer {
  return encodeAudioChunk({ seq, captureMs: Date.now(), frames: Array.from({ length: 12 }, () => new Uint8Array(1_275).fill(seq & 0xff)) });
}

const writes = (app: Parameters<typeof metricValue>[0], path: string) => metricValue(app, 'stampede_fanout_writes_total', { path });

/** Sends `chunks` from `from` on from the host in batches of 50, each batch once `pace` has heard all before it (no sleeps). */
async function sendPaced(host: TestClient, pace: TestClient, chunks: Buffer[], from = 0): Promise<void> {
  for (let i = from; i < chunks.length; i += 50) {
    for (const c of chunks.slice(i, i + 50)) host.ws.send(c);
    await pace.until((c) => c.binaries.length >= Math.min(chunks.length, i + 50), `chunk ${i + 49}`);
  }
}

describe('the fan-out writing straight to the socket handle (fanoutDirectWrite)', () => {
  const startApp = useApps();

  for (const on of [true, false]) {
    it(`with fanoutDirectWrite ${on} every listener gets every chunk in order, byte for byte, ${on ? 'straight to the handle' : 'through socket.write'}`, async () => {
      const s = await startApp({ fanoutDirectWrite: on, fanoutWritesPerTurn: 2 });
      const { id, hostToken } = await createSpace(s.url);
      await startSpace(s.url, id, hostToken);
      const listeners = await Promise.all(Array.from({ length: 5 }, () => joinAndConnect(s.url, id)));
      const host = await connectHost(s.url, id, hostToken);
      const sent = Array.from({ length: 40 }, (_, i) => bigChunk(i));
      await sendPaced(host, listeners[0]!, sent);
      for (const l of listeners) {
        await l.until((c) => c.binaries.length === sent.length, 'every chunk');
        expect(Buffer.concat(l.binaries).equals(Buffer.concat(sent))).toBe(true);
      }
      expect(await writes(s.app, on ? 'direct' : 'stream')).toBe(5 * 40);
      expect(await writes(s.app, on ? 'stream' : 'direct')).toBe(0);
    });
  }

  it('a listener that stops reading: a write taken in part, later chunks queued behind it or skipped; once it reads again it has whole chunks in order, and the others every chunk', async () => {
    const s = await startApp({ slowConsumerMs: 600_000 });
    const { id, hostToken } = await createSpace(s.url);
    await startSpace(s.url, id, hostToken);
    const stalled = await joinAndConnect(s.url, id);
    stalled.ws.pause(); // the client stops reading its socket, as a stalled device does
    const active = await joinAndConnect(s.url, id);
    const host = await connectHost(s.url, id, hostToken);
    const sent = Array.from({ length: 800 }, (_, i) => bigChunk(i));
    await sendPaced(host, active, sent);
    expect(Buffer.concat(active.binaries).equals(Buffer.concat(sent))).toBe(true);
    // the kernel's buffers filled: one direct write went in part, then writes queued in Node's stream, then chunks were skipped
    expect(await writes(s.app, 'direct_partial')).toBeGreaterThanOrEqual(1);
    expect(await writes(s.app, 'stream')).toBeGreaterThanOrEqual(1);
    const dropped = await metricValue(s.app, 'stampede_audio_chunks_dropped_total', { reason: 'backpressure' });
    expect(dropped).toBeGreaterThan(0);
    const toStalled = (await metricValue(s.app, 'stampede_audio_chunks_sent_total')) - sent.length;
    expect(toStalled + dropped).toBe(sent.length);
    stalled.ws.resume();
    await stalled.until((c) => c.binaries.length === toStalled, 'every chunk written to it');
    const seqs = stalled.binaries.map((b) => peekAudioHeader(b)!.seq);
    // whole chunks, each as sent, in order; the first ones contiguous (what went before its buffers filled)
    for (const b of stalled.binaries) expect(b.equals(sent[peekAudioHeader(b)!.seq]!)).toBe(true);
    expect(seqs.every((q, i) => i === 0 || q > seqs[i - 1]!)).toBe(true);
    expect(seqs.slice(0, 20)).toEqual(Array.from({ length: 20 }, (_, i) => i));
    expect(seqs.length).toBeLessThan(sent.length);
  });

  it('a listener that goes away while chunks flow is cleaned up; the others keep every chunk in order', async () => {
    const s = await startApp({ fanoutWritesPerTurn: 2 });
    const { id, hostToken } = await createSpace(s.url);
    await startSpace(s.url, id, hostToken);
    const listeners = await Promise.all(Array.from({ length: 6 }, () => joinAndConnect(s.url, id)));
    const host = await connectHost(s.url, id, hostToken);
    const sent = Array.from({ length: 60 }, (_, i) => bigChunk(i));
    await sendPaced(host, listeners[0]!, sent.slice(0, 20));
    // gone without a close frame, while chunks keep coming
    listeners[5]!.ws.terminate();
    await sendPaced(host, listeners[0]!, sent, 20);
    for (const l of listeners.slice(0, 5)) {
      await l.until((c) => c.binaries.length === 60, 'every chunk');
      expect(Buffer.concat(l.binaries).equals(Buffer.concat(sent))).toBe(true);
    }
    await expect.poll(() => metricValue(s.app, 'stampede_listeners', { kind: 'real' })).toBe(5);
  });
});
