import { describe, expect, it } from 'vitest';
import { api, createSpace, OPERATOR, useApps } from '../helpers/app.js';

type ErrBody = { v: number; error: { code: string; message: string; issues?: { path: string }[] } };

describe('HTTP API', () => {
  const boot = useApps();

  it('creates, lists, gets, starts and ends a space; host actions need the host token', async () => {
    const { url } = await boot();
    const { id, hostToken } = await createSpace(url, 'Town hall');
    const list = await api<{ spaces: { id: string; title: string; state: string }[] }>(url, 'GET', '/api/v1/spaces');
    expect(list.body.spaces).toEqual([expect.objectContaining({ id, title: 'Town hall', state: 'scheduled' })]);

    const noToken = await api<ErrBody>(url, 'POST', `/api/v1/spaces/${id}/start`);
    expect(noToken.status).toBe(401);
    expect(noToken.body.error.code).toBe('UNAUTHORIZED');
    const wrong = await api<ErrBody>(url, 'POST', `/api/v1/spaces/${id}/start`, undefined, { authorization: 'Bearer nope' });
    expect(wrong.status).toBe(403);
    expect(wrong.body.error.code).toBe('FORBIDDEN');

    const auth = { authorization: `Bearer ${hostToken}` };
    const endEarly = await api<ErrBody>(url, 'POST', `/api/v1/spaces/${id}/recording`, undefined, auth);
    expect(endEarly.status).toBe(405);
    const started = await api<{ space: { state: string; startedAt: string } }>(url, 'POST', `/api/v1/spaces/${id}/start`, undefined, auth);
    expect(started.status).toBe(200);
    expect(started.body.space.state).toBe('live');
    const again = await api<ErrBody>(url, 'POST', `/api/v1/spaces/${id}/start`, undefined, auth);
    expect(again.status).toBe(409);
    expect(again.body.error.code).toBe('INVALID_TRANSITION');
    const ended = await api<{ space: { state: string } }>(url, 'POST', `/api/v1/spaces/${id}/end`, undefined, auth);
    expect(ended.body.space.state).toBe('ended');
    const got = await api<{ space: { state: string; endedAt: string | null } }>(url, 'GET', `/api/v1/spaces/${id}`);
    expect(got.body.space.endedAt).not.toBeNull();
  });

  it('join returns a single-use ticket and a WebSocket URL; unknown and ended spaces are refused', async () => {
    const { url } = await boot();
    const { id, hostToken } = await createSpace(url);
    const j = await api<{ ticket: string; wsUrl: string; expiresAt: string }>(url, 'POST', `/api/v1/spaces/${id}/join`, { name: 'ada' });
    expect(j.status).toBe(200);
    expect(j.body.ticket).toMatch(/^[A-Za-z0-9_-]{32}$/);
    expect(j.body.wsUrl).toContain(`/ws?ticket=${j.body.ticket}`);
    expect(Date.parse(j.body.expiresAt)).toBeGreaterThan(Date.now());

    const missing = await api<ErrBody>(url, 'POST', '/api/v1/spaces/nope/join');
    expect(missing.status).toBe(404);
    expect(missing.body.error.code).toBe('SPACE_NOT_FOUND');

    const auth = { authorization: `Bearer ${hostToken}` };
    await api(url, 'POST', `/api/v1/spaces/${id}/start`, undefined, auth);
    await api(url, 'POST', `/api/v1/spaces/${id}/end`, undefined, auth);
    const ended = await api<ErrBody>(url, 'POST', `/api/v1/spaces/${id}/join`);
    expect(ended.status).toBe(409);
    expect(ended.body.error.code).toBe('SPACE_ENDED');
  });

  it('answers bad bodies with coded JSON errors that name the problem', async () => {
    const { url } = await boot();
    const badJson = await api<ErrBody>(url, 'POST', '/api/v1/spaces', '{"title": ', OPERATOR);
    expect(badJson.status).toBe(400);
    expect(badJson.body.error.code).toBe('BAD_JSON');

    const shape = await api<ErrBody>(url, 'POST', '/api/v1/spaces', { title: 42, scheduledStart: 'tomorrow' }, OPERATOR);
    expect(shape.status).toBe(400);
    expect(shape.body.error.code).toBe('BAD_REQUEST');
    expect(shape.body.error.issues?.map((i) => i.path).sort()).toEqual(['scheduledStart', 'title']);

    const extra = await api<ErrBody>(url, 'POST', '/api/v1/spaces', { title: 't', scheduledStart: new Date().toISOString(), admin: true }, OPERATOR);
    expect(extra.status).toBe(400);

    const proto = await api<ErrBody>(url, 'POST', '/api/v1/spaces', '{"title":"t","scheduledStart":"2024-08-13T00:00:00Z","__proto__":{"admin":true}}', OPERATOR);
    expect(proto.status).toBe(400);
    expect(proto.body.error.code).toBe('BAD_JSON');

    const big = await api<ErrBody>(url, 'POST', '/api/v1/spaces', { title: 'x'.repeat(20_000), scheduledStart: new Date().toISOString() }, OPERATOR);
    expect(big.status).toBe(413);
    expect(big.body.error.code).toBe('BODY_TOO_LARGE');

    const text = await api<ErrBody>(url, 'POST', '/api/v1/spaces', 'title=x', { 'content-type': 'text/plain', ...OPERATOR });
    expect(text.status).toBe(415);

    const route = await api<ErrBody>(url, 'GET', '/api/v1/nothing');
    expect(route.status).toBe(404);
    expect(route.body.error.code).toBe('NOT_FOUND');

    const method = await api<ErrBody>(url, 'DELETE', '/api/v1/spaces');
    expect(method.status).toBe(405);
    expect(method.headers.get('allow')).toBe('GET, POST');

    // the server is still fine after all of that
    expect((await api(url, 'GET', '/healthz')).status).toBe(200);
  });

  it('serves health, readiness, metrics, the replay status and the listener page', async () => {
    const { url } = await boot();
    expect((await api(url, 'GET', '/healthz')).body).toEqual({ status: 'ok' });
    expect((await api(url, 'GET', '/readyz')).status).toBe(200);
    expect((await api(url, 'GET', '/api/v1/replay')).body).toEqual({ v: 1, replay: { running: false } });
    const page = await fetch(url + '/');
    expect(page.headers.get('content-type')).toContain('text/html');
    expect(await page.text()).toContain('<title>Stampede');
  });

  it('answers over-long headers with 431 and keeps serving', async () => {
    const { url } = await boot();
    const { request } = await import('node:http');
    const status = await new Promise<number>((resolve, reject) => {
      const req = request(url + '/healthz', { headers: { 'x-big': 'a'.repeat(20_000) } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      req.end();
    });
    expect(status).toBe(431);
    expect((await api(url, 'GET', '/healthz')).status).toBe(200);
  });
});
