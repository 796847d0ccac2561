import { Writable } from 'node:stream';
import { request } from 'node:http';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../src/logging.js';
import { http, probeContract } from '../../src/load/probe.js';
import { api, createSpace, joinAndConnect, OPERATOR_TOKEN, startSpace, useApps } from '../helpers/app.js';

type ErrBody = { error: { code: string; message: string; retryAfterMs?: number } };

/** docs/reliability.md #25: the contract kept. */
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
});
