import { describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { checkOggOpus, readOggPages } from '../../src/audio/index.js';
import { manualClock, type ManualClock } from '../../src/clock.js';
import type { ServerConfigInput } from '../../src/config.js';
import { decodeAudioChunk, encodeAudioChunk, peekAudioHeader } from '../../src/protocol/index.js';
import { api, connect, createSpace, connectHost, joinAndConnect, metricValue, useApps, startSpace } from '../helpers/app.js';

function chunk(seq: number, fill = seq & 0xff): Buffer {
  return encodeAudioChunk({ seq, captureMs: Date.now(), frames: Array.from({ length: 5 }, () => new Uint8Array(100).fill(fill)) });
}

describe('WebSocket control channel and audio', () => {
  const startApp = useApps();

  it('fans the host audio out to every listener in order, with no gaps, byte for byte', async () => {
    const s = await startApp({ countIntervalMs: 20 });
    const { id, hostToken } = await createSpace(s.url);
    await startSpace(s.url, id, hostToken);
    const listeners = await Promise.all([1, 2, 3].map((i) => joinAndConnect(s.url, id, `l${i}`)));
    const host = await connectHost(s.url, id, hostToken);
    const sent = Array.from({ length: 200 }, (_, i) => chunk(i));
    for (const c of sent) host.ws.send(c);
    await Promise.all(listeners.map((l) => l.until((c) => c.binaries.length >= 200, '200 chunks')));
    for (const l of listeners) {
      expect(l.binaries.map((b) => peekAudioHeader(b)?.seq)).toEqual(sent.map((_, i) => i));
      expect(Buffer.concat(l.binaries).equals(Buffer.concat(sent))).toBe(true);
    }
    expect(await metricValue(s.app, 'stampede_audio_chunks_sent_total')).toBe(600);
    const got = await api<{ space: { chunks: number } }>(s.url, 'GET', `/api/v1/spaces/${id}`);
    expect(got.body.space.chunks).toBe(200);
  });

  it('a listener back from another instance (?after=<seq>) hears only the chunks after the last one it heard; a bad after is refused', async () => {
    const s = await startApp();
    const { id, hostToken } = await createSpace(s.url);
    await startSpace(s.url, id, hostToken);
    const join = async (): Promise<string> => (await api<{ wsUrl: string }>(s.url, 'POST', `/api/v1/spaces/${id}/join`)).body.wsUrl;
    const fresh = await joinAndConnect(s.url, id);
    const ahead = await connect(`${await join()}&after=4`);
    const bad = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      void join().then((u) => {
        const ws = new WebSocket(`${u}&after=-1`);
        ws.on('unexpected-response', (_req, res) => {
          let body = '';
          res.on('data', (d: Buffer) => (body += d.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        });
        ws.on('error', () => undefined);
      }, reject);
    });
    expect(bad.status).toBe(400);
    expect(JSON.parse(bad.body).error.code).toBe('BAD_REQUEST');
    const host = await connectHost(s.url, id, hostToken);
    for (let i = 0; i < 10; i++) host.ws.send(chunk(i));
    await Promise.all([fresh, ahead].map((l) => l.until((c) => c.binaries.some((b) => peekAudioHeader(b)?.seq === 9), 'chunk 9')));
    expect(fresh.binaries.map((b) => peekAudioHeader(b)?.seq)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(ahead.binaries.map((b) => peekAudioHeader(b)?.seq)).toEqual([5, 6, 7, 8, 9]);
  });

  it('serves the live window over HTTP, as a CDN would: a playlist and the chunks by sequence number', async () => {
    const s = await startApp();
    const { id, hostToken } = await createSpace(s.url);
    await startSpace(s.url, id, hostToken);
    const listener = await joinAndConnect(s.url, id);
    const host = await connectHost(s.url, id, hostToken);
    const sent = Array.from({ length: 320 }, (_, i) => chunk(i));
    for (const c of sent) host.ws.send(c);
    await listener.until((c) => c.binaries.length === 320);
    const playlist = await api<{ first: number; last: number; state: string }>(s.url, 'GET', `/api/v1/spaces/${id}/playlist`);
    expect(playlist.body).toMatchObject({ first: 20, last: 319, state: 'live' });
    const res = await fetch(`${s.url}/api/v1/spaces/${id}/chunks/319`);
    expect(res.headers.get('content-type')).toBe('application/octet-stream');
    expect(Buffer.from(await res.arrayBuffer()).equals(sent[319]!)).toBe(true);
    const gone = await api<{ error: { code: string } }>(s.url, 'GET', `/api/v1/spaces/${id}/chunks/3`);
    expect(gone.status).toBe(404);
    expect(gone.body.error.code).toBe('CHUNK_NOT_FOUND');
    expect((await api(s.url, 'GET', `/api/v1/spaces/${id}/chunks/320`)).status).toBe(404);
    expect((await api(s.url, 'GET', `/api/v1/spaces/${id}/chunks/-1`)).status).toBe(400);
  });

  it('refuses audio that is malformed, out of order or not from the host, and keeps the connection', async () => {
    const s = await startApp();
    const { id, hostToken } = await createSpace(s.url);
    await startSpace(s.url, id, hostToken);
    const listener = await joinAndConnect(s.url, id);
    const host = await connectHost(s.url, id, hostToken);
    host.ws.send(Buffer.from([1, 1, 0, 1, 0, 0, 0, 0])); // too short
    host.ws.send(chunk(5)); // out of order
    listener.ws.send(chunk(0)); // listeners do not send audio
    host.ws.send(chunk(0));
    await host.until((c) => c.texts.filter((m) => m.type === 'error').length >= 2);
    await listener.until((c) => c.binaries.length === 1 && c.texts.some((m) => m.type === 'error'));
    const hostErrors = host.texts.filter((m) => m.type === 'error').map((m) => m.message as string);
    expect(hostErrors[0]).toMatch(/malformed audio chunk: TOO_SHORT/);
    expect(hostErrors[1]).toMatch(/out of order: expected sequence 0, got 5/);
    expect(listener.texts.find((m) => m.type === 'error')).toMatchObject({ code: 'FORBIDDEN' });
    expect(peekAudioHeader(listener.binaries[0]!)?.seq).toBe(0);
  });

  it('never negotiates compression, so the frames written beside ws stay in order with its own sends', async () => {
    const s = await startApp();
    const { id, hostToken } = await createSpace(s.url);
    await startSpace(s.url, id, hostToken);
    // the client offers permessage-deflate; the server must not take it
    const listener = await joinAndConnect(s.url, id, 'l', { perMessageDeflate: true });
    expect(listener.ws.extensions).toBe('');
  });

  /** A live space with a listener and its host on an app that coalesces 3 chunks per write; `inWindow(n)` waits until the server has taken chunk n. */
  async function coalescing(server: ServerConfigInput, clock: ManualClock) {
    const s = await startApp({ fanoutCoalesceChunks: 3, ...server }, { clock });
    const { id, hostToken } = await createSpace(s.url);
    await startSpace(s.url, id, hostToken);
    const listener = await joinAndConnect(s.url, id);
    const host = await connectHost(s.url, id, hostToken);
    const inWindow = async (last: number): Promise<void> => {
      // the live window takes each chunk at once; poll it until the server has taken chunk `last`
      while ((await api<{ last: number }>(s.url, 'GET', `/api/v1/spaces/${id}/playlist`)).body.last < last) await new Promise((r) => setTimeout(r, 5));
    };
    return { s, id, hostToken, listener, host, inWindow };
  }

  it('with fanoutCoalesceChunks = 3 holds chunks until three are in, writes them together, and flushes the rest before the end', async () => {
    // a clock that stands still: the hold bound (fanoutCoalesceMaxHoldMs) never passes here, however slow the machine
    const { s, id, hostToken, listener, host, inWindow } = await coalescing({}, manualClock(Date.UTC(2026, 0, 1)));
    const sent = Array.from({ length: 7 }, (_, i) => chunk(i));
    host.ws.send(sent[0]!);
    host.ws.send(sent[1]!);
    await inWindow(1);
    // two chunks in: nothing written to any listener yet
    expect(await metricValue(s.app, 'stampede_audio_chunks_sent_total')).toBe(0);
    for (const c of sent.slice(2)) host.ws.send(c);
    await listener.until((c) => c.binaries.length >= 6, 'six chunks');
    await inWindow(6);
    expect(await metricValue(s.app, 'stampede_audio_chunks_sent_total')).toBe(6);
    await api(s.url, 'POST', `/api/v1/spaces/${id}/end`, undefined, { authorization: `Bearer ${hostToken}` });
    expect((await listener.closed).code).toBe(4500);
    expect(listener.binaries.map((b) => peekAudioHeader(b)?.seq)).toEqual([0, 1, 2, 3, 4, 5, 6]);
    expect(Buffer.concat(listener.binaries).equals(Buffer.concat(sent))).toBe(true);
  });

  it('paces a room bigger than one turn\'s budget: every listener hears every chunk in order, counts ride in the chunks\' writes, the end flushes first', async () => {
    // two writes and one arrival per turn: eight listeners and a crowd of joins take several turns each
    const s = await startApp({ fanoutWritesPerTurn: 2, admissionsPerTurn: 1, countIntervalMs: 40 });
    const { id, hostToken } = await createSpace(s.url);
    await startSpace(s.url, id, hostToken);
    const listeners = await Promise.all(Array.from({ length: 8 }, (_, i) => joinAndConnect(s.url, id, `l${i}`)));
    const host = await connectHost(s.url, id, hostToken);
    const sent = Array.from({ length: 60 }, (_, i) => chunk(i));
    for (const c of sent.slice(0, 30)) host.ws.send(c);
    // audio flows: a count of 8 reaches everyone (with a chunk, or alone when no chunk came within a tick)
    await Promise.all(listeners.map((l) => l.until((c) => c.texts.some((m) => m.type === 'count' && m.real === 8), 'a count of 8')));
    for (const c of sent.slice(30)) host.ws.send(c);
    // end once the server has taken the last chunk (the live window takes each chunk at once)
    while ((await api<{ last: number }>(s.url, 'GET', `/api/v1/spaces/${id}/playlist`)).body.last < 59) await new Promise((r) => setTimeout(r, 5));
    await api(s.url, 'POST', `/api/v1/spaces/${id}/end`, undefined, { authorization: `Bearer ${hostToken}` });
    for (const l of listeners) {
      expect((await l.closed).code).toBe(4500);
      expect(l.binaries.map((b) => peekAudioHeader(b)?.seq)).toEqual(sent.map((_, i) => i));
      expect(Buffer.concat(l.binaries).equals(Buffer.concat(sent))).toBe(true);
      // the space's end comes after the last chunk
      expect(l.texts.some((m) => m.type === 'state' && m.state === 'ended')).toBe(true);
    }
    expect(await metricValue(s.app, 'stampede_audio_chunks_sent_total')).toBe(8 * 60);
  });

  it('with fanoutCoalesceChunks = 3 flushes what it holds once the first held chunk has waited fanoutCoalesceMaxHoldMs, on the app clock', async () => {
    const clock = manualClock(Date.UTC(2026, 0, 1));
    const { s, listener, host, inWindow } = await coalescing({ fanoutCoalesceMaxHoldMs: 200 }, clock);
    const sent = Array.from({ length: 6 }, (_, i) => chunk(i));
    const sentTotal = () => metricValue(s.app, 'stampede_audio_chunks_sent_total');
    // two chunks held, the host pauses: 1 ms short of the bound nothing is written, at the bound both go out
    host.ws.send(sent[0]!);
    host.ws.send(sent[1]!);
    await inWindow(1);
    await clock.advance(199);
    expect(await sentTotal()).toBe(0);
    await clock.advance(1);
    await listener.until((c) => c.binaries.length >= 2, 'the two held chunks');
    expect(await sentTotal()).toBe(2);
    // three in a row go out as a batch, and the flush armed for their first is cancelled
    for (const c of sent.slice(2, 5)) host.ws.send(c);
    await listener.until((c) => c.binaries.length >= 5, 'a full batch');
    await clock.advance(1_000);
    expect(await sentTotal()).toBe(5);
    // a new hold starts its own bound
    host.ws.send(sent[5]!);
    await inWindow(5);
    await clock.advance(200);
    await listener.until((c) => c.binaries.length >= 6, 'the last chunk');
    expect(listener.binaries.map((b) => peekAudioHeader(b)?.seq)).toEqual([0, 1, 2, 3, 4, 5]);
    expect(Buffer.concat(listener.binaries).equals(Buffer.concat(sent))).toBe(true);
  });

  it('sends coalesced listener counts (not one per join) and aggregated reactions', async () => {
    const s = await startApp({ countIntervalMs: 50 });
    const { id, hostToken } = await createSpace(s.url);
    await startSpace(s.url, id, hostToken);
    const first = await joinAndConnect(s.url, id);
    const others = await Promise.all(Array.from({ length: 20 }, () => joinAndConnect(s.url, id)));
    await first.until((c) => c.texts.some((m) => m.type === 'count' && m.real === 21), 'a count of 21');
    const counts = first.texts.filter((m) => m.type === 'count');
    // 20 joins arrived within a few ticks: far fewer count messages than joins
    expect(counts.length).toBeLessThan(20);
    expect(counts.at(-1)).toMatchObject({ real: 21, virtual: 0, total: 21 });

    for (const o of others.slice(0, 5)) o.ws.send(JSON.stringify({ type: 'react', emoji: '🔥' }));
    first.ws.send(JSON.stringify({ type: 'react', emoji: '👏' }));
    await first.until((c) => {
      const sum: Record<string, number> = {};
      for (const m of c.texts) if (m.type === 'reactions') for (const [k, v] of Object.entries(m.counts as Record<string, number>)) sum[k] = (sum[k] ?? 0) + v;
      return sum['🔥'] === 5 && sum['👏'] === 1;
    }, 'reactions');

    for (const o of others) o.ws.close();
    await first.until((c) => c.texts.at(-1)?.type === 'count' && c.texts.at(-1)?.real === 1, 'count back to 1');
    expect(await metricValue(s.app, 'stampede_listeners', { kind: 'real' })).toBe(1);
  });

  it('passes a request to speak to the host, and the host grants the floor', async () => {
    const s = await startApp();
    const { id, hostToken } = await createSpace(s.url);
    await startSpace(s.url, id, hostToken);
    const host = await connectHost(s.url, id, hostToken);
    const listener = await joinAndConnect(s.url, id, 'grace');
    const welcome = listener.texts.find((m) => m.type === 'welcome') as { listenerId: string; role: string };
    expect(welcome.role).toBe('listener');
    listener.ws.send(JSON.stringify({ type: 'request_speak' }));
    await host.until((c) => c.texts.some((m) => m.type === 'speak_request'));
    expect(host.texts.find((m) => m.type === 'speak_request')).toMatchObject({ listenerId: welcome.listenerId, name: 'grace' });
    listener.ws.send(JSON.stringify({ type: 'grant_speak', listenerId: welcome.listenerId }));
    await listener.until((c) => c.texts.some((m) => m.type === 'error'));
    expect(listener.texts.find((m) => m.type === 'error')).toMatchObject({ code: 'FORBIDDEN' });
    host.ws.send(JSON.stringify({ type: 'grant_speak', listenerId: welcome.listenerId }));
    await listener.until((c) => c.texts.some((m) => m.type === 'speakers'));
    expect(listener.texts.find((m) => m.type === 'speakers')?.speakers).toEqual(expect.arrayContaining([{ id: welcome.listenerId, name: 'grace' }]));
  });

  it('tells listeners the space ended with 4500 and publishes a complete recording', async () => {
    const s = await startApp();
    const { id, hostToken } = await createSpace(s.url);
    await startSpace(s.url, id, hostToken);
    const listener = await joinAndConnect(s.url, id);
    const host = await connectHost(s.url, id, hostToken);
    const sent = Array.from({ length: 50 }, (_, i) => chunk(i, 255 - i));
    for (const c of sent) host.ws.send(c);
    await listener.until((c) => c.binaries.length === 50);
    const early = await api<{ error: { code: string } }>(s.url, 'GET', `/api/v1/spaces/${id}/recording`);
    expect(early.status).toBe(409);
    expect(early.body.error.code).toBe('RECORDING_NOT_READY');
    await api(s.url, 'POST', `/api/v1/spaces/${id}/end`, undefined, { authorization: `Bearer ${hostToken}` });
    expect((await listener.closed).code).toBe(4500);
    const res = await fetch(`${s.url}/api/v1/spaces/${id}/recording`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('audio/ogg; codecs=opus');
    expect(res.headers.get('x-stampede-chunks')).toBe('50');
    const body = Buffer.from(await res.arrayBuffer());
    // an Ogg Opus file: one page per chunk, holding that chunk's frames as they were sent, in order
    const check = checkOggOpus(body);
    expect(check.problems).toEqual([]);
    const pages = readOggPages(body).slice(2);
    expect(pages.map((p) => p.packets.map((f) => Buffer.from(f).toString('hex')))).toEqual(
      sent.map((c) => (decodeAudioChunk(c) as { ok: true; chunk: { frames: Uint8Array[] } }).chunk.frames.map((f) => Buffer.from(f).toString('hex'))),
    );
    // a player may ask for a byte range (to read the duration, to seek)
    const tail = await fetch(`${s.url}/api/v1/spaces/${id}/recording`, { headers: { range: 'bytes=-100' } });
    expect(tail.status).toBe(206);
    expect(tail.headers.get('content-range')).toBe(`bytes ${body.length - 100}-${body.length - 1}/${body.length}`);
    expect(Buffer.from(await tail.arrayBuffer()).equals(body.subarray(body.length - 100))).toBe(true);
    const head = await fetch(`${s.url}/api/v1/spaces/${id}/recording`, { method: 'HEAD' });
    expect(head.headers.get('content-length')).toBe(String(body.length));
    expect((await fetch(`${s.url}/api/v1/spaces/${id}/recording`, { headers: { range: `bytes=${body.length}-` } })).status).toBe(416);
  });

  it('refuses upgrades without a valid ticket before the WebSocket opens, with a JSON reason', async () => {
    const s = await startApp();
    const { id } = await createSpace(s.url);
    const base = s.url.replace(/^http/, 'ws');
    const refused = (u: string, opts: ConstructorParameters<typeof WebSocket>[2] = {}) =>
      new Promise<{ status: number; body: string }>((resolve) => {
        const ws = new WebSocket(u, opts);
        ws.on('unexpected-response', (_req, res) => {
          let body = '';
          res.on('data', (d: Buffer) => (body += d.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        });
        ws.on('error', () => undefined);
      });
    const noTicket = await refused(`${base}/ws`);
    expect(noTicket.status).toBe(401);
    expect(JSON.parse(noTicket.body).error.code).toBe('TICKET_INVALID');
    expect((await refused(`${base}/ws?ticket=${'a'.repeat(32)}`)).status).toBe(401);
    expect((await refused(`${base}/elsewhere`)).status).toBe(404);
    expect((await refused(`${base}/ws?space=${id}`, { headers: { authorization: 'Bearer wrong' } })).status).toBe(403);
    expect((await refused(`${base}/ws?space=${id}`)).status).toBe(401);
    // a ticket works once
    const j = await api<{ wsUrl: string }>(s.url, 'POST', `/api/v1/spaces/${id}/join`);
    const c = await connect(j.body.wsUrl);
    await c.until((x) => x.texts.some((m) => m.type === 'welcome'), 'welcome');
    expect((await refused(j.body.wsUrl)).status).toBe(401);
  });
});
