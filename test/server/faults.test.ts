import { describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { checkOggOpus } from '../../src/audio/index.js';
import { manualClock } from '../../src/clock.js';
import { encodeAudioChunk, peekAudioHeader } from '../../src/protocol/index.js';
import { NO_FAULTS, type FanOut } from '../../src/server/index.js';
import { api, connect, createSpace, connectHost, joinAndConnect, metricValue, startSpace, useApps, type TestClient } from '../helpers/app.js';

const FRAMES = [new Uint8Array([0xf8, 1, 2, 3])];

/** A ping round trip on one socket: everything the server wrote to it before the pong has arrived. */
async function roundTrip(c: TestClient, id: number): Promise<void> {
  c.ws.send(JSON.stringify({ type: 'ping', id }));
  await c.until((x) => x.texts.some((m) => m.type === 'pong' && m.id === id), `pong ${id}`);
}

let pings = 1000;
/** The host sends chunks [from, to); on return the server has taken them all in, and the listener has had whatever the fan-out sent it. */
async function send(host: TestClient, listener: TestClient, from: number, to: number): Promise<void> {
  for (let seq = from; seq < to; seq++) host.ws.send(encodeAudioChunk({ seq, captureMs: 0, frames: FRAMES }));
  await roundTrip(host, pings++);
  await roundTrip(listener, pings++);
}

const seqs = (c: TestClient): number[] => c.binaries.map((b) => peekAudioHeader(b)!.seq);

describe('the fault injector inside the server (real sockets)', () => {
  const startApp = useApps();

  async function liveSpace(opts: Parameters<typeof startApp>[1] = {}) {
    const s = await startApp({}, { faults: { random: () => 0.5 }, ...opts });
    const { id, hostToken } = await createSpace(s.url);
    await startSpace(s.url, id, hostToken);
    const host = await connectHost(s.url, id, hostToken);
    const listener = await joinAndConnect(s.url, id);
    return { s, id, hostToken, host, listener, injector: s.app.faults! };
  }

  it('without faults the server holds the null object: its fan-out route is the fan-out itself', () => {
    const fanOut: FanOut = () => undefined;
    expect(NO_FAULTS.route(fanOut)).toBe(fanOut);
    let ran = 0;
    NO_FAULTS.heartbeat(() => ran++);
    expect(ran).toBe(1);
  });

  it('drops chunks on their way to listeners while on (a sequence gap), keeps them in the recording, and counts them', async () => {
    const { s, id, hostToken, host, listener, injector } = await liveSpace();
    await send(host, listener, 0, 3);
    const drop = injector.begin({ kind: 'drop', spaceId: null, share: 1 });
    expect(await metricValue(s.app, 'stampede_faults_active', { kind: 'drop' })).toBe(1);
    await send(host, listener, 3, 8);
    injector.end(drop);
    await send(host, listener, 8, 10);
    expect(seqs(listener)).toEqual([0, 1, 2, 8, 9]);
    expect(await metricValue(s.app, 'stampede_faults_injected_total', { kind: 'drop' })).toBe(5);
    expect(await metricValue(s.app, 'stampede_faults_active', { kind: 'drop' })).toBe(0);
    // a partial drop takes the chunks its random source picks: 0.5 < 0.6 drops, 0.5 < 0.4 does not
    const some = injector.begin({ kind: 'drop', spaceId: id, share: 0.6 });
    await send(host, listener, 10, 12);
    injector.end(some);
    const keep = injector.begin({ kind: 'drop', spaceId: id, share: 0.4 });
    await send(host, listener, 12, 14);
    injector.end(keep);
    expect(seqs(listener)).toEqual([0, 1, 2, 8, 9, 12, 13]);
    // the recording is the host's audio, whole: the fault is in the fan-out
    await api(s.url, 'POST', `/api/v1/spaces/${id}/end`, {}, { authorization: `Bearer ${hostToken}` });
    const rec = await fetch(`${s.url}/api/v1/spaces/${id}/recording`);
    expect(rec.status).toBe(200);
    expect(checkOggOpus(Buffer.from(await rec.arrayBuffer())).audioPages).toBe(14);
  });

  it('a stall holds every chunk, then lets them all go in order when it ends', async () => {
    const { s, host, listener, injector } = await liveSpace();
    await send(host, listener, 0, 2);
    const stall = injector.begin({ kind: 'stall', spaceId: null });
    await send(host, listener, 2, 6);
    expect(seqs(listener)).toEqual([0, 1]);
    injector.end(stall);
    await roundTrip(listener, pings++);
    expect(seqs(listener)).toEqual([0, 1, 2, 3, 4, 5]);
    await send(host, listener, 6, 7);
    expect(seqs(listener)).toEqual([0, 1, 2, 3, 4, 5, 6]);
    expect(await metricValue(s.app, 'stampede_faults_injected_total', { kind: 'stall' })).toBe(4);
  });

  it('echoes: every chunk comes again two chunks later, only for the space it names', async () => {
    const { s, id, host, listener, injector } = await liveSpace();
    const other = await createSpace(s.url, 'other');
    await startSpace(s.url, other.id, other.hostToken);
    const otherHost = await connectHost(s.url, other.id, other.hostToken);
    const otherListener = await joinAndConnect(s.url, other.id);
    const echo = injector.begin({ kind: 'duplicate', spaceId: id, delayChunks: 2 });
    await send(host, listener, 0, 6);
    await send(otherHost, otherListener, 0, 3);
    injector.end(echo);
    await send(host, listener, 6, 7);
    expect(seqs(listener)).toEqual([0, 1, 2, 0, 3, 1, 4, 2, 5, 3, 6]);
    expect(seqs(otherListener)).toEqual([0, 1, 2]);
    expect(await metricValue(s.app, 'stampede_faults_injected_total', { kind: 'duplicate' })).toBe(4);
  });

  it('frozen heartbeats: no pings go out and a dead peer is not terminated, until the freeze ends', async () => {
    const clock = manualClock(Date.now());
    const s = await startApp({ heartbeatMs: 15_000 }, { clock, faults: { random: () => 0 } });
    const { id, hostToken } = await createSpace(s.url);
    await startSpace(s.url, id, hostToken);
    const dead = await joinAndConnect(s.url, id, 'dead', { autoPong: false });
    const alive = await joinAndConnect(s.url, id, 'alive');
    let pinged = 0;
    alive.ws.on('ping', () => pinged++);
    const freeze = s.app.faults!.begin({ kind: 'freezeHeartbeats' });
    await clock.advance(15_000);
    await clock.advance(15_000);
    await clock.advance(15_000);
    await roundTrip(alive, 1);
    await roundTrip(dead, 2);
    expect(pinged).toBe(0);
    expect(dead.ws.readyState).toBe(WebSocket.OPEN);
    expect(await metricValue(s.app, 'stampede_faults_injected_total', { kind: 'freezeHeartbeats' })).toBe(3);
    s.app.faults!.end(freeze);
    const ping = new Promise((r) => alive.ws.once('ping', r));
    await clock.advance(15_000);
    await ping;
    await new Promise((r) => alive.ws.once('pong', r).ping()); // its own pong has reached the server
    await clock.advance(15_000);
    expect((await dead.closed).code).toBe(1006);
    expect(alive.ws.readyState).toBe(WebSocket.OPEN);
    expect(await metricValue(s.app, 'stampede_heartbeat_terminations_total')).toBe(1);
  });

  it('a failing recording disk: recordings open meanwhile are not published; one started after it ends is', async () => {
    const { s, id, hostToken, host, listener, injector } = await liveSpace();
    await send(host, listener, 0, 3);
    const disk = injector.begin({ kind: 'failRecordingDisk', spaceId: null });
    const during = await createSpace(s.url, 'during');
    await startSpace(s.url, during.id, during.hostToken, true);
    injector.end(disk);
    const after = await createSpace(s.url, 'after');
    await startSpace(s.url, after.id, after.hostToken);
    const afterHost = await connectHost(s.url, after.id, after.hostToken);
    const afterListener = await joinAndConnect(s.url, after.id);
    await send(afterHost, afterListener, 0, 2);
    // listeners still hear the audio: the disk is not the fan-out
    await send(host, listener, 3, 5);
    expect(seqs(listener)).toEqual([0, 1, 2, 3, 4]);
    for (const sp of [{ id, hostToken }, during, after]) expect((await api(s.url, 'POST', `/api/v1/spaces/${sp.id}/end`, {}, { authorization: `Bearer ${sp.hostToken}` })).status).toBe(200);
    const state = async (sid: string) => {
      const { space } = (await api<{ space: { recordingReady: boolean; recordingLost: boolean } }>(s.url, 'GET', `/api/v1/spaces/${sid}`)).body;
      return space.recordingReady ? 'ready' : space.recordingLost ? 'lost' : 'pending';
    };
    expect([await state(id), await state(during.id), await state(after.id)]).toEqual(['lost', 'lost', 'ready']);
    // the listener asking for a lost recording is told it is gone for good, not to come back later
    const lost = await api<{ error: { code: string } }>(s.url, 'GET', `/api/v1/spaces/${id}/recording`);
    expect([lost.status, lost.body.error.code]).toEqual([410, 'RECORDING_LOST']);
    expect((await fetch(`${s.url}/api/v1/spaces/${after.id}/recording`)).status).toBe(200);
    expect(await metricValue(s.app, 'stampede_recording_failures_total')).toBe(2);
    expect(await metricValue(s.app, 'stampede_faults_injected_total', { kind: 'failRecordingDisk' })).toBe(2);
  });
});
