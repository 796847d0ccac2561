import { describe, expect, it } from 'vitest';
import { http, probeHoard } from '../../src/load/probe.js';
import { OPERATOR, useApps } from '../helpers/app.js';

type ErrBody = { error: { code: string; retryAfterMs?: number } };

/** docs/reliability.md #23: join admission per address; one address cannot hoard a space's places. */
describe('ticket hoarding', () => {
  const startApp = useApps();

  it('one address holding tickets it never uses cannot keep a genuine listener out', async () => {
    const s = await startApp({ maxListeners: 200, joinRatePerAddress: 1_000, joinBurstPerAddress: 1_000, maxTicketsPerAddress: 50 });
    const r = await probeHoard({ base: new URL(s.url), token: OPERATOR.authorization.slice(7) }, { hoardJoins: 400 });
    // the hoarder gets its share of unused tickets and no more
    expect(r.ticketsHoarded).toBe(s.app.config.maxTicketsPerAddress);
    expect(r.genuineFirstStatus).toBe(200);
    expect(r.genuineAttempts).toBe(1);
  });

  it('refuses an address past its join rate with 429 RATE_LIMITED and Retry-After, while another address still joins', async () => {
    const s = await startApp({ joinRatePerAddress: 2, joinBurstPerAddress: 5, maxTicketsPerAddress: 50 });
    const base = new URL(s.url);
    const c = await http(base, 'POST', '/api/v1/spaces', { body: { title: 't', scheduledStart: new Date().toISOString() }, headers: OPERATOR });
    const id = (c.body as { space: { id: string } }).space.id;
    const burst = [];
    for (let i = 0; i < 8; i++) burst.push(await http(base, 'POST', `/api/v1/spaces/${id}/join`, { localAddress: '127.0.0.4' }));
    expect(burst.map((r) => r.status)).toEqual([200, 200, 200, 200, 200, 429, 429, 429]);
    expect((burst[5]!.body as ErrBody).error.code).toBe('RATE_LIMITED');
    expect(Number(burst[5]!.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect((await http(base, 'POST', `/api/v1/spaces/${id}/join`, { localAddress: '127.0.0.5' })).status).toBe(200);
  });

  it('refuses an address holding its share of unused tickets with 429 TOO_MANY_TICKETS; using one frees a place', async () => {
    const s = await startApp({ maxTicketsPerAddress: 3 });
    const base = new URL(s.url);
    const c = await http(base, 'POST', '/api/v1/spaces', { body: { title: 't', scheduledStart: new Date().toISOString() }, headers: OPERATOR });
    const { space, hostToken } = c.body as { space: { id: string }; hostToken: string };
    await http(base, 'POST', `/api/v1/spaces/${space.id}/start`, { headers: { authorization: `Bearer ${hostToken}` } });
    const got = [];
    for (let i = 0; i < 4; i++) got.push(await http(base, 'POST', `/api/v1/spaces/${space.id}/join`, { localAddress: '127.0.0.6' }));
    expect(got.map((r) => r.status)).toEqual([200, 200, 200, 429]);
    expect((got[3]!.body as ErrBody).error.code).toBe('TOO_MANY_TICKETS');
    const { WebSocket } = await import('ws');
    const ws = new WebSocket((got[0]!.body as { wsUrl: string }).wsUrl, { localAddress: '127.0.0.6' });
    await new Promise((r) => ws.once('open', r));
    expect((await http(base, 'POST', `/api/v1/spaces/${space.id}/join`, { localAddress: '127.0.0.6' })).status).toBe(200);
    ws.close();
  });
});
