import { describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { manualClock } from '../../src/clock.js';
import { checkOggOpus, readOggPages } from '../../src/audio/index.js';
import { decodeAudioChunk, encodeAudioChunk, peekAudioHeader } from '../../src/protocol/index.js';
import { api, connect, createSpace, connectHost, joinAndConnect, metricValue, useApps, startSpace } from '../helpers/app.js';

const BIG_FRAMES = Array.from({ length: 12 }, () => new Uint8Array(1275).fill(7));

describe('slow consumers, dead peers and bad input', () => {
  const startApp = useApps();

  it('skips chunks for a paused listener, keeps everyone else whole, then closes the laggard', async () => {
    const clock = manualClock(Date.now());
    const s = await startApp({ slowConsumerMs: 5_000 }, { clock });
    const { id, hostToken } = await createSpace(s.url);
    await startSpace(s.url, id, hostToken);

    const paused = await joinAndConnect(s.url, id);
    paused.ws.pause(); // ws's public pause: the client stops reading its socket, as a stalled device does
    const j = await api<{ wsUrl: string }>(s.url, 'POST', `/api/v1/spaces/${id}/join`);
    const active = new WebSocket(j.body.wsUrl);
    let received = 0;
    let inOrder = true;
    const progress = new Set<() => void>();
    active.on('message', (data: Buffer, binary) => {
      if (!binary) return;
      if (peekAudioHeader(data)?.seq !== received) inOrder = false;
      received++;
      for (const p of progress) p();
    });
    await new Promise((r) => active.once('open', r));
    const host = await connectHost(s.url, id, hostToken);

    const total = 3_000;
    const chunkBytes = encodeAudioChunk({ seq: 0, captureMs: 0, frames: BIG_FRAMES }).length;
    for (let seq = 0; seq < total; seq += 20) {
      for (let k = seq; k < seq + 20; k++) host.ws.send(encodeAudioChunk({ seq: k, captureMs: clock.now(), frames: BIG_FRAMES }));
      // pace the host by the active listener (event-driven, no sleeps)
      await new Promise<void>((resolve) => {
        const check = () => {
          if (received >= seq + 20) {
            progress.delete(check);
            resolve();
          }
        };
        progress.add(check);
        check();
      });
    }
    expect(received).toBe(total);
    expect(inOrder).toBe(true);
    const sent = await metricValue(s.app, 'stampede_audio_chunks_sent_total');
    const dropped = await metricValue(s.app, 'stampede_audio_chunks_dropped_total', { reason: 'backpressure' });
    const toPaused = sent - total;
    expect(toPaused + dropped).toBe(total);
    // what the server ever queued for the paused listener is bounded (skip threshold + kernel buffers),
    // far below the 46 MB offered
    expect(toPaused * chunkBytes).toBeLessThan(20 * 1024 * 1024);
    expect(dropped).toBeGreaterThan(total / 2);

    await clock.advance(6_000);
    host.ws.send(encodeAudioChunk({ seq: total, captureMs: clock.now(), frames: BIG_FRAMES }));
    await expect.poll(() => metricValue(s.app, 'stampede_audio_chunks_dropped_total', { reason: 'slow_consumer_closed' })).toBe(1);
    paused.ws.resume();
    expect((await paused.closed).code).toBe(1006);
    await expect.poll(() => metricValue(s.app, 'stampede_listeners', { kind: 'real' })).toBe(1);
    expect(active.readyState).toBe(WebSocket.OPEN);
    active.close();
  });

  it('terminates a peer that stops answering pings, and only that peer', async () => {
    const clock = manualClock(Date.now());
    const s = await startApp({ heartbeatMs: 15_000 }, { clock });
    const { id, hostToken } = await createSpace(s.url);
    await startSpace(s.url, id, hostToken);
    const dead = await joinAndConnect(s.url, id, 'dead', { autoPong: false });
    const alive = await joinAndConnect(s.url, id, 'alive');
    const pinged = new Promise((r) => alive.ws.once('ping', r));
    await clock.advance(15_000);
    await pinged; // the live peer got its ping and (automatically) answered
    await new Promise((r) => alive.ws.once('pong', r).ping()); // a round trip, so its pong has reached the server
    await clock.advance(15_000);
    expect((await dead.closed).code).toBe(1006);
    expect(await metricValue(s.app, 'stampede_heartbeat_terminations_total')).toBe(1);
    expect(alive.ws.readyState).toBe(WebSocket.OPEN);
    await expect.poll(() => metricValue(s.app, 'stampede_listeners', { kind: 'real' })).toBe(1);
  });

  it('answers bad messages with coded errors, closes after ten, and leaves other listeners alone', async () => {
    const s = await startApp();
    const { id, hostToken } = await createSpace(s.url);
    await startSpace(s.url, id, hostToken);
    const bystander = await joinAndConnect(s.url, id);
    const bad = await joinAndConnect(s.url, id);
    const inputs = [
      '{"type": "react", "emoji": ',
      '[1,2,3]',
      '{"type":"dance"}',
      '{"type":"react","emoji":"💩"}',
      '{"type":"ping","id":"x"}',
      '{"type":"react","emoji":"👏","__proto__":{"x":1}}',
      '{"type":"react","emoji":"👏","extra":1}',
    ];
    for (const t of inputs) bad.ws.send(t);
    await bad.until((c) => c.texts.filter((m) => m.type === 'error').length === inputs.length, 'seven errors');
    const codes = bad.texts.filter((m) => m.type === 'error').map((m) => m.code);
    expect(codes).toEqual(['BAD_MESSAGE', 'BAD_MESSAGE', 'UNKNOWN_TYPE', 'BAD_MESSAGE', 'BAD_MESSAGE', 'BAD_MESSAGE', 'BAD_MESSAGE']);
    expect(bad.texts.find((m) => m.code === 'UNKNOWN_TYPE')?.message).toContain("unknown message type 'dance'");
    bad.ws.send(JSON.stringify({ type: 'ping', id: 7 }));
    await bad.until((c) => c.texts.some((m) => m.type === 'pong' && m.id === 7), 'pong');
    for (let i = 0; i < 3; i++) bad.ws.send('nope');
    expect((await bad.closed).code).toBe(1008);
    expect(bystander.ws.readyState).toBe(WebSocket.OPEN);
    bystander.ws.send(JSON.stringify({ type: 'ping', id: 1 }));
    await bystander.until((c) => c.texts.some((m) => m.type === 'pong'));
  });

  it('closes with 1009 on an oversized message and 1007 on invalid UTF-8', async () => {
    const s = await startApp();
    const { id, hostToken } = await createSpace(s.url);
    await startSpace(s.url, id, hostToken);
    const bystander = await joinAndConnect(s.url, id);
    const big = await joinAndConnect(s.url, id);
    big.ws.send('x'.repeat(70 * 1024));
    expect((await big.closed).code).toBe(1009);
    const utf = await joinAndConnect(s.url, id);
    // a text frame holding an invalid UTF-8 byte sequence: ws sends a Buffer as text when told to, unchecked
    utf.ws.send(Buffer.from([0xc3, 0x28]), { binary: false });
    expect((await utf.closed).code).toBe(1007);
    expect(bystander.ws.readyState).toBe(WebSocket.OPEN);
    await expect.poll(() => metricValue(s.app, 'stampede_ws_closes_total', { code: '1009' })).toBe(1);
    await expect.poll(() => metricValue(s.app, 'stampede_ws_closes_total', { code: '1007' })).toBe(1);
  });

  it('shuts down gracefully: clients see 1001, the recording is complete and in order, stop() twice is one stop', async () => {
    const s = await startApp({ chunkIntervalMs: 10 });
    const { id, hostToken } = await createSpace(s.url);
    await startSpace(s.url, id, hostToken, true);
    const listeners = await Promise.all([1, 2, 3].map(() => joinAndConnect(s.url, id)));
    for (const l of listeners) await l.until((c) => c.binaries.length >= 5, 'audio');
    const stopping = s.app.stop();
    expect(s.app.stop()).toBe(stopping);
    const codes = await Promise.all(listeners.map((l) => l.closed.then((c) => c.code)));
    expect(codes).toEqual([1001, 1001, 1001]);
    await stopping;
    const path = s.app.server.recordingPath(id);
    expect(path).not.toBeNull();
    const { readFile } = await import('node:fs/promises');
    const file = await readFile(path!);
    // one Ogg page per chunk, in order: a listener's chunks are recognised by their Opus frames
    const frames = (c: Buffer): string => (decodeAudioChunk(c) as { ok: true; chunk: { frames: Uint8Array[] } }).chunk.frames.map((f) => Buffer.from(f).toString('hex')).join(',');
    expect(checkOggOpus(file).problems).toEqual([]);
    const recorded = readOggPages(file).slice(2).map((p) => p.packets.map((f) => Buffer.from(f).toString('hex')).join(','));
    expect(recorded.length).toBe(s.app.server.spaces.get(id)!.chunks);
    // what each listener heard, from the chunk it joined at, is a gap-free run of the recording
    for (const l of listeners) {
      const first = peekAudioHeader(l.binaries[0]!)!.seq;
      expect(l.binaries.map((b) => peekAudioHeader(b)!.seq)).toEqual(l.binaries.map((_, i) => first + i));
      expect(l.binaries.map(frames)).toEqual(recorded.slice(first, first + l.binaries.length));
    }
  });
});
