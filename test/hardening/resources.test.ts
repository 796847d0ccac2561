import { readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { manualClock } from '../../src/clock.js';
import { http, probeResources } from '../../src/load/probe.js';
import { encodeAudioChunk } from '../../src/protocol/index.js';
import { api, connectHost, createSpace, joinAndConnect, OPERATOR, OPERATOR_TOKEN, startSpace, useApps } from '../helpers/app.js';
import { useTempDir } from '../helpers/tmp.js';

type ErrBody = { error: { code: string; message: string } };
type Page = { spaces: { id: string; state: string }[]; next: string | null };
/** A chunk near the 16 KiB maximum: twelve Opus frames of the largest size. */
const big = (seq: number): Buffer => encodeAudioChunk({ seq, captureMs: Date.now(), frames: Array.from({ length: 12 }, () => new Uint8Array(1275).fill(3)) });

/** One unlabelled sample from the server's /metrics (docs/metrics.md). */
async function gauge(url: string, name: string): Promise<number> {
  const text = (await api<string>(url, 'GET', '/metrics')).body;
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  if (!line) throw new Error(`no ${name} in /metrics`);
  return Number(line.slice(name.length + 1));
}

/** docs/reliability.md #24: spaces are bounded, the list is paginated, a space whose host left ends. */
describe('bounded spaces', () => {
  const startApp = useApps();

  it('creates spaces only with the operator token: anonymous 401 UNAUTHORIZED, another token 403 FORBIDDEN', async () => {
    const s = await startApp({ maxSpaces: 3 });
    const r = await probeResources({ base: new URL(s.url), token: OPERATOR_TOKEN }, { creates: 5 });
    expect(r).toMatchObject({ anonymousCreateStatus: 401, createdWithToken: 3, createRefusal: '409 SPACE_LIMIT' });
    const body = { title: 't', scheduledStart: new Date().toISOString() };
    const anon = await api<ErrBody>(s.url, 'POST', '/api/v1/spaces', body);
    expect(anon.body.error.code).toBe('UNAUTHORIZED');
    expect(anon.body.error.message).toContain('operator token');
    const notBearer = await api<ErrBody>(s.url, 'POST', '/api/v1/spaces', body, { authorization: `Basic ${OPERATOR_TOKEN}` });
    expect(notBearer.status).toBe(401);
    const wrong = await api<ErrBody>(s.url, 'POST', '/api/v1/spaces', body, { authorization: 'Bearer not-the-operator-token' });
    expect([wrong.status, wrong.body.error.code]).toEqual([403, 'FORBIDDEN']);
    const spaces = (await api<Page>(s.url, 'GET', '/api/v1/spaces')).body.spaces;
    expect(spaces).toHaveLength(3);
    expect((await api(s.url, 'GET', '/healthz')).status).toBe(200);
  });

  it('starts and ends any space with the operator token; a host token only its own space', async () => {
    const s = await startApp();
    const a = await createSpace(s.url);
    const b = await createSpace(s.url);
    const hostOfB = { authorization: `Bearer ${b.hostToken}` };
    const other = await api<ErrBody>(s.url, 'POST', `/api/v1/spaces/${a.id}/start`, undefined, hostOfB);
    expect([other.status, other.body.error.code]).toEqual([403, 'FORBIDDEN']);
    expect((await api<ErrBody>(s.url, 'POST', '/api/v1/spaces', { title: 't', scheduledStart: new Date().toISOString() }, hostOfB)).status).toBe(403);
    expect((await api(s.url, 'POST', `/api/v1/spaces/${a.id}/start`, undefined, OPERATOR)).status).toBe(200);
    expect((await api(s.url, 'POST', `/api/v1/spaces/${a.id}/end`, undefined, OPERATOR)).status).toBe(200);
    const none = await api<ErrBody>(s.url, 'POST', `/api/v1/spaces/${b.id}/start`);
    expect([none.status, none.body.error.code]).toEqual([401, 'UNAUTHORIZED']);
    expect((await api(s.url, 'POST', `/api/v1/spaces/${b.id}/start`, undefined, hostOfB)).status).toBe(200);
  });

  it('caps the spaces that are not over (409 SPACE_LIMIT), and pages the list', async () => {
    const s = await startApp({ maxSpaces: 5, maxPageSize: 2 });
    const created: string[] = [];
    for (let i = 0; i < 5; i++) created.push((await createSpace(s.url, `space ${i}`)).id);
    const over = await api<ErrBody>(s.url, 'POST', '/api/v1/spaces', { title: 'one too many', scheduledStart: new Date().toISOString() }, OPERATOR);
    expect(over.status).toBe(409);
    expect(over.body.error.code).toBe('SPACE_LIMIT');

    const seen: string[] = [];
    let next: string | null = '';
    for (let pages = 0; next !== null; pages++) {
      expect(pages).toBeLessThan(5);
      const page: { status: number; body: Page } = await api<Page>(s.url, 'GET', `/api/v1/spaces?limit=2${next ? `&after=${next}` : ''}`);
      expect(page.status).toBe(200);
      expect(page.body.spaces.length).toBeLessThanOrEqual(2);
      seen.push(...page.body.spaces.map((x) => x.id));
      next = page.body.next;
    }
    expect(seen).toEqual(created);
    // without a limit: the largest page
    expect((await api<Page>(s.url, 'GET', '/api/v1/spaces')).body.spaces).toHaveLength(2);
    for (const q of ['limit=0', 'limit=3', 'limit=x', 'after=' + 'z'.repeat(300), 'other=1']) {
      const r = await api<ErrBody>(s.url, 'GET', `/api/v1/spaces?${q}`);
      expect(r.status, q).toBe(400);
      expect(r.body.error.code, q).toBe('BAD_REQUEST');
    }
  });

  it('refuses a page cursor that names no space here, rather than starting the list again', async () => {
    const s = await startApp({ maxLiveSpaces: 1, maxEndedSpaces: 1, maxPageSize: 1 });
    const a = await createSpace(s.url);
    const b = await createSpace(s.url);
    const c = await createSpace(s.url);
    const first = await api<Page>(s.url, 'GET', '/api/v1/spaces?limit=1');
    expect([first.body.spaces.map((x) => x.id), first.body.next]).toEqual([[a.id], a.id]);
    // between two pages the cursor's space ends and is forgotten (one ended space is kept: a, then b ends)
    for (const sp of [a, b]) {
      await startSpace(s.url, sp.id, sp.hostToken);
      expect((await api(s.url, 'POST', `/api/v1/spaces/${sp.id}/end`, undefined, { authorization: `Bearer ${sp.hostToken}` })).status).toBe(200);
    }
    expect((await api(s.url, 'GET', `/api/v1/spaces/${a.id}`)).status).toBe(404);
    const next = await api<ErrBody>(s.url, 'GET', `/api/v1/spaces?limit=1&after=${a.id}`);
    expect(next.status).toBe(400);
    expect(next.body.error.code).toBe('BAD_REQUEST');
    expect(next.body.error.message).toContain(`after: no space '${a.id}' here`);
    // listed again from the start, the walk ends
    const ids: string[] = [];
    for (let after = ''; ; ) {
      const p = await api<Page>(s.url, 'GET', `/api/v1/spaces?limit=1${after ? `&after=${after}` : ''}`);
      ids.push(...p.body.spaces.map((x) => x.id));
      if (p.body.next === null) break;
      after = p.body.next;
    }
    expect(ids).toEqual([b.id, c.id]);
  });

  it('caps live spaces, and forgets the oldest ended spaces past maxEndedSpaces', async () => {
    const s = await startApp({ maxLiveSpaces: 1, maxEndedSpaces: 1 });
    const a = await createSpace(s.url);
    const b = await createSpace(s.url);
    await startSpace(s.url, a.id, a.hostToken);
    const over = await api<ErrBody>(s.url, 'POST', `/api/v1/spaces/${b.id}/start`, undefined, { authorization: `Bearer ${b.hostToken}` });
    expect(over.status).toBe(409);
    expect(over.body.error.code).toBe('SPACE_LIMIT');
    expect((await api(s.url, 'POST', `/api/v1/spaces/${a.id}/end`, undefined, { authorization: `Bearer ${a.hostToken}` })).status).toBe(200);
    await startSpace(s.url, b.id, b.hostToken);
    expect((await api(s.url, 'POST', `/api/v1/spaces/${b.id}/end`, undefined, { authorization: `Bearer ${b.hostToken}` })).status).toBe(200);
    // two ended, one remembered: the older is gone
    expect((await api<ErrBody>(s.url, 'GET', `/api/v1/spaces/${a.id}`)).status).toBe(404);
    expect((await api(s.url, 'GET', `/api/v1/spaces/${b.id}`)).status).toBe(200);
  });

  it('ends a live space whose host stays gone past the grace period, not one whose host came back', async () => {
    const clock = manualClock(Date.now());
    // heartbeats out of the way: this manual clock jumps further than a pong can travel
    const s = await startApp({ hostGoneGraceMs: 10_000, heartbeatMs: 600_000 }, { clock });
    const gone = await createSpace(s.url);
    const back = await createSpace(s.url);
    await startSpace(s.url, gone.id, gone.hostToken);
    await startSpace(s.url, back.id, back.hostToken);
    const listener = await joinAndConnect(s.url, gone.id);
    const h1 = await connectHost(s.url, gone.id, gone.hostToken);
    const h2 = await connectHost(s.url, back.id, back.hostToken);
    h1.ws.close();
    await h1.closed;
    await clock.advance(6_000);
    h2.ws.close();
    await h2.closed;
    const h2again = await connectHost(s.url, back.id, back.hostToken);
    await clock.advance(6_000);
    expect((await listener.closed).code).toBe(4500);
    const state = async (id: string): Promise<string> => (await api<{ space: { state: string } }>(s.url, 'GET', `/api/v1/spaces/${id}`)).body.space.state;
    expect(await state(gone.id)).toBe('ended');
    await clock.advance(20_000);
    expect(await state(back.id)).toBe('live');
    h2again.ws.close();
  });

  it('stops recording at the disk quota (the host is told, listeners keep hearing), publishes it as incomplete, and refuses new starts with 507', async () => {
    const s = await startApp({ recordingQuotaBytes: 64 * 1024 });
    const { id, hostToken } = await createSpace(s.url);
    await startSpace(s.url, id, hostToken);
    const host = await connectHost(s.url, id, hostToken);
    const listener = await joinAndConnect(s.url, id);
    for (let seq = 0; seq < 8; seq++) host.ws.send(big(seq));
    await host.until((c) => c.texts.some((m) => m.type === 'error' && m.code === 'RECORDING_QUOTA'), 'the quota error');
    await listener.until((c) => c.binaries.length === 8, 'all 8 chunks, recorded or not');
    const other = await createSpace(s.url);
    const refused = await api<ErrBody>(s.url, 'POST', `/api/v1/spaces/${other.id}/start`, undefined, { authorization: `Bearer ${other.hostToken}` });
    expect([refused.status, refused.body.error.code]).toEqual([507, 'RECORDING_QUOTA']);
    expect((await api(s.url, 'POST', `/api/v1/spaces/${id}/end`, undefined, OPERATOR)).status).toBe(200);
    const rec = await http(new URL(s.url), 'HEAD', `/api/v1/spaces/${id}/recording`);
    expect(rec.status).toBe(200);
    expect(rec.headers['x-stampede-complete']).toBe('false');
    const chunks = Number(rec.headers['x-stampede-chunks']);
    expect(chunks).toBeGreaterThan(0);
    expect(chunks).toBeLessThan(8);
    // the audio pages stay within the quota; the Ogg head, tags and end pages are a few hundred bytes
    expect(Number(rec.headers['content-length'])).toBeLessThan(64 * 1024 + 1024);
    // what an operator scrapes: the quota's use and its limit
    expect(await gauge(s.url, 'stampede_recording_quota_limit_bytes')).toBe(64 * 1024);
    const used = await gauge(s.url, 'stampede_recording_quota_used_bytes');
    expect(used).toBeGreaterThan(64 * 1024 - 2 * big(0).length);
    expect(used).toBeLessThanOrEqual(64 * 1024);
  });

  const dir = useTempDir('stampede-rec-restart-');
  it('counts the recordings already in its directory at start: a restarted process does not start at 0', async () => {
    const first = await startApp({ recordingDir: dir(), recordingQuotaBytes: 1024 ** 2 });
    expect(await gauge(first.url, 'stampede_recording_quota_used_bytes')).toBe(0);
    const { id, hostToken } = await createSpace(first.url);
    await startSpace(first.url, id, hostToken);
    const host = await connectHost(first.url, id, hostToken);
    const listener = await joinAndConnect(first.url, id);
    for (let seq = 0; seq < 6; seq++) host.ws.send(big(seq));
    await listener.until((c) => c.binaries.length === 6, '6 chunks');
    expect((await api(first.url, 'POST', `/api/v1/spaces/${id}/end`, undefined, OPERATOR)).status).toBe(200);
    await expect.poll(async () => (await http(new URL(first.url), 'HEAD', `/api/v1/spaces/${id}/recording`)).status).toBe(200);
    await first.close();
    let onDisk = 0;
    for (const f of await readdir(dir())) onDisk += (await stat(join(dir(), f))).size;
    expect(onDisk).toBeGreaterThan(6 * 15_000);
    // the same directory after a restart: what is there is counted
    const second = await startApp({ recordingDir: dir(), recordingQuotaBytes: 1024 ** 2 });
    expect(await gauge(second.url, 'stampede_recording_quota_used_bytes')).toBe(onDisk);
    await second.close();
    // a directory nearly full already: the next start is refused at once
    await writeFile(join(dir(), 'older.opus.partial'), Buffer.alloc(1024 ** 2 - onDisk - 1_000));
    const third = await startApp({ recordingDir: dir(), recordingQuotaBytes: 1024 ** 2 });
    const next = await createSpace(third.url);
    const refused = await api<ErrBody>(third.url, 'POST', `/api/v1/spaces/${next.id}/start`, undefined, { authorization: `Bearer ${next.hostToken}` });
    expect([refused.status, refused.body.error.code]).toEqual([507, 'RECORDING_QUOTA']);
  });

  it('bounds the live windows of all spaces together, and forgets the audio of spaces it no longer remembers', async () => {
    const s = await startApp({ liveWindowTotalBytes: 64 * 1024, maxEndedSpaces: 1 });
    const spaces = [await createSpace(s.url), await createSpace(s.url)];
    for (const sp of spaces) {
      await startSpace(s.url, sp.id, sp.hostToken);
      const host = await connectHost(s.url, sp.id, sp.hostToken);
      const listener = await joinAndConnect(s.url, sp.id);
      for (let seq = 0; seq < 20; seq++) host.ws.send(big(seq));
      await listener.until((c) => c.binaries.length === 20, '20 chunks');
      const w = await api<{ first: number; last: number }>(s.url, 'GET', `/api/v1/spaces/${sp.id}/playlist`);
      expect(w.body.last).toBe(19);
      expect(w.body.last - w.body.first + 1).toBeGreaterThanOrEqual(1);
      expect((await http(new URL(s.url), 'GET', `/api/v1/spaces/${sp.id}/chunks/19`)).status).toBe(200);
      // at most the budget, plus the newest chunk each space always keeps
      expect(s.app.server.audioHeld().liveWindowBytes).toBeLessThanOrEqual(64 * 1024 + 2 * big(0).length);
      expect(await gauge(s.url, 'stampede_live_window_bytes')).toBe(s.app.server.audioHeld().liveWindowBytes);
      host.ws.close();
    }
    expect(s.app.server.audioHeld().tracks).toBe(2);
    for (const sp of spaces) expect((await api(s.url, 'POST', `/api/v1/spaces/${sp.id}/end`, undefined, OPERATOR)).status).toBe(200);
    // one ended space remembered: the other's window and recording entry are gone with it
    expect(s.app.server.audioHeld().tracks).toBe(1);
    expect(await gauge(s.url, 'stampede_live_window_bytes')).toBe(s.app.server.audioHeld().liveWindowBytes);
    expect(await gauge(s.url, 'stampede_live_window_limit_bytes')).toBe(64 * 1024);
  });
});
