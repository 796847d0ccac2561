import { describe, expect, it } from 'vitest';
import { manualClock } from '../../src/clock.js';
import { probeResources } from '../../src/load/probe.js';
import { api, connectHost, createSpace, joinAndConnect, OPERATOR, OPERATOR_TOKEN, startSpace, useApps } from '../helpers/app.js';

type ErrBody = { error: { code: string; message: string } };
type Page = { spaces: { id: string; state: string }[]; next: string | null };

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
});
