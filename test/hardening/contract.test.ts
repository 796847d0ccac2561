import { Writable } from 'node:stream';
import { request } from 'node:http';
import { describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { createLogger } from '../../src/logging.js';
import { http, probeContract, probeDoors } from '../../src/load/probe.js';
import { api, connect, createSpace, joinAndConnect, OPERATOR_TOKEN, startSpace, useApps } from '../helpers/app.js';

type ErrBody = { error: { code: string; message: string; retryAfterMs?: number } };

/** docs/reliability.md #25 (the contract kept) and #26 (browser-facing doors). */
describe('the documented contract', () => {
  const startApp = useApps();

  it('#25: null, arrays and wrong types in any body are 400; ending a scheduled space is 409', async () => {
    const s = await startApp();
    const r = await probeContract({ base: new URL(s.url), token: OPERATOR_TOKEN });
    expect(r).toEqual({ startNull: 400, startArray: 400, startWrongType: 400, joinNull: 400, createArray: 400, endScheduled: 409 });
    const { id, hostToken } = await createSpace(s.url);
    const end = await api<ErrBody>(s.url, 'POST', `/api/v1/spaces/${id}/end`, undefined, { authorization: `Bearer ${hostToken}` });
    expect(end.body.error.code).toBe('INVALID_TRANSITION');
    const bad = await api<ErrBody & { error: { issues: { path: string }[] } }>(s.url, 'POST', `/api/v1/spaces/${id}/start`, { syntheticHost: 1 }, { authorization: `Bearer ${hostToken}` });
    expect(bad.body.error.code).toBe('BAD_REQUEST');
    expect(bad.body.error.issues.map((i) => i.path)).toEqual(['syntheticHost']);
  });

  it('#25: while draining, a new connection is answered 503 DRAINING with Retry-After, not refused at TCP', async () => {
    const s = await startApp({ shutdownDeadlineMs: 3_000 });
    const { id, hostToken } = await createSpace(s.url);
    await startSpace(s.url, id, hostToken);
    // a listener that never reads keeps the drain waiting for it until the deadline
    const stuck = await joinAndConnect(s.url, id);
    stuck.ws.pause();
    const stopping = s.app.stop();
    await expect.poll(async () => (await api(s.url, 'GET', '/readyz').catch(() => ({ status: 0 }))).status).toBe(503);
    const r = await http(new URL(s.url), 'GET', '/api/v1/spaces');
    expect(r.status).toBe(503);
    expect((r.body as ErrBody).error.code).toBe('DRAINING');
    expect(Number(r.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    const j = await http(new URL(s.url), 'POST', `/api/v1/spaces/${id}/join`);
    expect(j.status).toBe(503);
    await stopping;
  });

  it('#25: a client that aborts its request is logged at debug, not as an error with a stack', async () => {
    const out: string[] = [];
    const stream = new Writable({ write: (c: Buffer, _e, cb) => (out.push(c.toString()), cb()) });
    const s = await startApp({}, { logger: createLogger({ level: 'debug', destination: stream }) });
    const { id } = await createSpace(s.url);
    const u = new URL(s.url);
    await new Promise<void>((resolve) => {
      // 100-continue: the server's answer says it has the headers and is reading the body
      const req = request({ host: u.hostname, port: u.port, path: `/api/v1/spaces/${id}/join`, method: 'POST', headers: { 'content-type': 'application/json', 'content-length': '1000', expect: '100-continue' } });
      req.on('error', () => resolve());
      req.on('continue', () => {
        req.write('{"name":', () => req.destroy());
      });
      req.flushHeaders();
    });
    await expect.poll(() => out.join('')).toContain('client aborted');
    const lines = out.join('').split('\n').filter(Boolean).map((l) => JSON.parse(l) as { level: number; msg: string; err?: unknown });
    expect(lines.find((l) => l.msg.includes('client aborted'))?.level).toBe(20);
    expect(lines.filter((l) => l.level >= 50)).toEqual([]);
  });

  it('#26: cross-site pages cannot open sockets or call the API; the host token never goes in a URL', async () => {
    const s = await startApp();
    const r = await probeDoors({ base: new URL(s.url), token: OPERATOR_TOKEN });
    expect(r).toEqual({ crossSiteListenerUpgrade: 403, hostTokenInQuery: 400, hostTokenInHeader: 101, crossSitePreflight: 403, crossSiteJoin: 403, crossSiteAllowOrigin: null });
    const { id } = await createSpace(s.url);
    const evil = await http(new URL(s.url), 'GET', `/api/v1/spaces/${id}`, { headers: { origin: 'https://evil.example' } });
    expect((evil.body as ErrBody).error.code).toBe('ORIGIN_FORBIDDEN');
    // nothing of that hurt anyone else: the server still answers
    expect((await api(s.url, 'GET', '/healthz')).status).toBe(200);
  });

  it('#26: a browser host offers its token as a subprotocol, and the server answers stampede.v1 without echoing it', async () => {
    const s = await startApp();
    const { id, hostToken } = await createSpace(s.url);
    await startSpace(s.url, id, hostToken);
    const ws = `${s.url.replace(/^http/, 'ws')}/ws?space=${id}`;
    const noToken = await connect(ws).catch((e: Error) => e);
    expect(String(noToken)).toContain('401');
    const browserLike = new WebSocket(ws, ['stampede.v1', `stampede.host.${hostToken}`], { origin: s.url });
    const welcome = new Promise<Record<string, unknown>>((resolve) => browserLike.once('message', (d) => resolve(JSON.parse(String(d)) as Record<string, unknown>)));
    await new Promise<void>((resolve, reject) => {
      browserLike.once('open', () => resolve());
      browserLike.once('error', reject);
    });
    expect(browserLike.protocol).toBe('stampede.v1');
    expect(await welcome).toMatchObject({ type: 'welcome', role: 'host' });
    browserLike.close();
    const wrong = await connect(ws, { headers: { 'sec-websocket-protocol': 'stampede.v1, stampede.host.wrong-token' } }).catch((e: Error) => e);
    expect(String(wrong)).toContain('403');
  });

  it('#26: an allowed origin gets an explicit CORS answer; the page served here may connect', async () => {
    const s = await startApp({ allowedOrigins: ['https://dash.example'] });
    const { id } = await createSpace(s.url);
    const pre = await http(new URL(s.url), 'OPTIONS', `/api/v1/spaces/${id}/join`, { headers: { origin: 'https://dash.example', 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' } });
    expect(pre.status).toBe(204);
    expect(pre.headers['access-control-allow-origin']).toBe('https://dash.example');
    expect(pre.headers['access-control-allow-methods']).toContain('POST');
    expect(pre.headers.vary).toContain('Origin');
    const got = await http(new URL(s.url), 'GET', `/api/v1/spaces/${id}`, { headers: { origin: 'https://dash.example' } });
    expect(got.status).toBe(200);
    expect(got.headers['access-control-allow-origin']).toBe('https://dash.example');
    // a page served by this server connects with its own origin; an allowed site's page too
    const same = await joinAndConnect(s.url, id, undefined, { origin: s.url });
    expect(same.ws.readyState).toBe(same.ws.OPEN);
    const dash = await joinAndConnect(s.url, id, undefined, { origin: 'https://dash.example' });
    expect(dash.ws.readyState).toBe(dash.ws.OPEN);
    same.ws.close();
    dash.ws.close();
  });
});
