import { connect as tcpConnect } from 'node:net';
import { describe, expect, it } from 'vitest';
import { manualClock } from '../../src/clock.js';
import { api, connect, createSpace, joinAndConnect, metricValue, settableGate, useApps, startSpace } from '../helpers/app.js';

type ErrBody = { error: { code: string; retryAfterMs?: number } };

describe('admission control and load shedding', () => {
  const startApp = useApps();

  it('refuses a join burst past the rate limit with 429 + Retry-After, and admits again once tokens refill', async () => {
    const clock = manualClock(1_000_000);
    const s = await startApp({ joinRatePerSecond: 10, joinBurst: 10 }, { clock });
    const { id } = await createSpace(s.url);
    const burst = await Promise.all(Array.from({ length: 25 }, () => api<ErrBody>(s.url, 'POST', `/api/v1/spaces/${id}/join`)));
    const statuses = burst.map((r) => r.status);
    expect(statuses.filter((x) => x === 200)).toHaveLength(10);
    expect(statuses.filter((x) => x === 429)).toHaveLength(15);
    const refused = burst.find((r) => r.status === 429)!;
    expect(refused.body.error.code).toBe('RATE_LIMITED');
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(await metricValue(s.app, 'stampede_join_attempts_total', { kind: 'real', outcome: 'rate_limited' })).toBe(15);

    await clock.advance(500); // half a second refills 5 tokens
    const after = await Promise.all(Array.from({ length: 6 }, () => api(s.url, 'POST', `/api/v1/spaces/${id}/join`)));
    expect(after.map((r) => r.status).sort()).toEqual([200, 200, 200, 200, 200, 429]);
  });

  it('refuses joins past the concurrent-listener cap with 503 CAPACITY, counting issued tickets', async () => {
    const s = await startApp({ maxListeners: 3 });
    const { id, hostToken } = await createSpace(s.url);
    await startSpace(s.url, id, hostToken);
    const a = await joinAndConnect(s.url, id);
    await joinAndConnect(s.url, id);
    const pending = await api(s.url, 'POST', `/api/v1/spaces/${id}/join`); // a ticket not yet used still holds a place
    expect(pending.status).toBe(200);
    const full = await api<ErrBody>(s.url, 'POST', `/api/v1/spaces/${id}/join`);
    expect(full.status).toBe(503);
    expect(full.body.error.code).toBe('CAPACITY');
    expect(full.headers.get('retry-after')).toBe('2');
    a.ws.close();
    await a.closed;
    await expect.poll(async () => (await api(s.url, 'GET', `/api/v1/spaces/${id}`)).body).toMatchObject({ space: { listeners: { real: 1 } } });
    expect((await api(s.url, 'POST', `/api/v1/spaces/${id}/join`)).status).toBe(200);
  });

  it('sheds load while the event loop lags: joins get 503 OVERLOADED, upgrades close 1013, readiness 503', async () => {
    let lagMs = 0;
    const s = await startApp({}, { loadSignal: { eventLoopLagMs: () => lagMs, heapUsedBytes: () => 0 } });
    const { id, hostToken } = await createSpace(s.url);
    await startSpace(s.url, id, hostToken);
    const joined = await api<{ wsUrl: string }>(s.url, 'POST', `/api/v1/spaces/${id}/join`);
    const inside = await joinAndConnect(s.url, id);

    lagMs = 1_000;
    const shed = await api<ErrBody>(s.url, 'POST', `/api/v1/spaces/${id}/join`);
    expect(shed.status).toBe(503);
    expect(shed.body.error.code).toBe('OVERLOADED');
    expect(shed.headers.get('retry-after')).toBe('2');
    expect((await api(s.url, 'GET', '/readyz')).status).toBe(503);
    const late = await connect(joined.body.wsUrl);
    expect(await late.closed).toEqual({ code: 1013, reason: 'retry-after=2' });
    // those already inside are not disturbed
    expect(inside.ws.readyState).toBe(inside.ws.OPEN);
    expect(await metricValue(s.app, 'stampede_join_attempts_total', { kind: 'real', outcome: 'overloaded' })).toBe(1);

    lagMs = 0;
    expect((await api(s.url, 'GET', '/readyz')).status).toBe(200);
    expect((await api(s.url, 'POST', `/api/v1/spaces/${id}/join`)).status).toBe(200);
  });

  it('refuses a shed join before reading it, on a connection that stays open: same answer, counted, pipelined requests behind it served', async () => {
    let lagMs = 0;
    const s = await startApp({}, { loadSignal: { eventLoopLagMs: () => lagMs, heapUsedBytes: () => 0 } });
    const { id } = await createSpace(s.url);
    lagMs = 1_000;
    const { port } = new URL(s.url);
    const join = (extra: string, body = '') => `POST /api/v1/spaces/${id}/join HTTP/1.1\r\nhost: 127.0.0.1\r\n${extra}content-type: application/json\r\ncontent-length: ${body.length}\r\n\r\n${body}`;
    // three requests in one write on one keep-alive connection: a join with a body that would not even
    // validate, one with the client's request id, then a health check
    const wire = join('', '{"name":5}') + join('x-request-id: mine-1\r\n') + 'GET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n';
    const answers = await new Promise<string[]>((resolve, reject) => {
      const sock = tcpConnect(Number(port), '127.0.0.1', () => sock.write(wire));
      let text = '';
      sock.on('data', (d: Buffer) => {
        text += d.toString('latin1');
        const parts: string[] = [];
        let rest = text;
        for (;;) {
          const end = rest.indexOf('\r\n\r\n');
          if (end < 0) break;
          const len = Number(/content-length: (\d+)/i.exec(rest.slice(0, end))?.[1] ?? 0);
          if (rest.length < end + 4 + len) break;
          parts.push(rest.slice(0, end + 4 + len));
          rest = rest.slice(end + 4 + len);
        }
        if (parts.length === 3) {
          sock.destroy();
          resolve(parts);
        }
      });
      sock.on('error', reject);
    });
    const [a, b, health] = answers as [string, string, string];
    for (const r of [a, b]) {
      expect(r).toMatch(/^HTTP\/1\.1 503 /);
      expect(r).toMatch(/\r\nretry-after: 2\r\n/i);
      expect(r).toMatch(/\r\ncontent-type: application\/json; charset=utf-8\r\n/i);
      expect(r).not.toMatch(/\r\nconnection: close/i);
      expect(JSON.parse(r.slice(r.indexOf('\r\n\r\n') + 4))).toEqual({ v: 1, error: { code: 'OVERLOADED', message: 'the server is shedding load (event loop lag)', retryAfterMs: 2_000 } });
    }
    expect(a).toMatch(/\r\nx-request-id: r\d+\r\n/i);
    expect(b).toMatch(/\r\nx-request-id: mine-1\r\n/i);
    expect(health).toMatch(/^HTTP\/1\.1 200 /);
    expect(await metricValue(s.app, 'stampede_join_attempts_total', { kind: 'real', outcome: 'overloaded' })).toBe(2);
    expect(await metricValue(s.app, 'stampede_http_request_duration_seconds', { route: 'join', status_class: '5xx', le: '+Inf' })).toBe(2);
    // what is not a join to a known space takes the full path even while shedding
    expect((await api<ErrBody>(s.url, 'POST', '/api/v1/spaces/nope/join')).body.error.code).toBe('SPACE_NOT_FOUND');
  });

  it('a crowd in one read: joins beyond the tokens already claimed by queued joins are refused early, unread', async () => {
    // one admission a turn and two tokens that never refill: the first join runs at once, the next ones
    // wait in the queue, each holding a claim on a token; a join the free tokens cannot cover is refused
    // at the gate. Every body here fails validation, so a join that got past the gate says so with a 400.
    const s = await startApp({ joinRatePerSecond: 1, joinBurst: 2, admissionsPerTurn: 1 }, { clock: manualClock(1_000_000) });
    const { id } = await createSpace(s.url);
    const { port } = new URL(s.url);
    const body = '{"name":5}';
    const join = `POST /api/v1/spaces/${id}/join HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\n\r\n${body}`;
    const n = 40;
    const statuses = await new Promise<number[]>((resolve, reject) => {
      const sock = tcpConnect(Number(port), '127.0.0.1', () => sock.write(join.repeat(n)));
      let text = '';
      const got: number[] = [];
      sock.on('data', (d: Buffer) => {
        text += d.toString('latin1');
        for (;;) {
          const end = text.indexOf('\r\n\r\n');
          if (end < 0) break;
          const len = Number(/content-length: (\d+)/i.exec(text.slice(0, end))?.[1] ?? 0);
          if (text.length < end + 4 + len) break;
          got.push(Number(text.slice(9, 12)));
          text = text.slice(end + 4 + len);
        }
        if (got.length === n) {
          sock.destroy();
          resolve(got);
        }
      });
      sock.on('error', reject);
    });
    // the whole crowd arrives in one read: the running join and the two that claimed the two tokens are
    // read (400), every other is refused unread (429); a crowd split over reads lets a few more through
    const read = statuses.filter((x) => x === 400).length;
    expect(statuses.filter((x) => x === 429).length).toBe(n - read);
    expect(read).toBeGreaterThanOrEqual(3);
    expect(read).toBeLessThan(n / 2);
    expect(await metricValue(s.app, 'stampede_join_attempts_total', { kind: 'real', outcome: 'rate_limited' })).toBe(n - read);
  });

  it('a join waiting for its body keeps its claim on the last token: the crowd behind it is refused, it is admitted', async () => {
    // one token that never refills. The first join's headers arrive without its body: it is let through
    // and waits for the body, holding a claim on the token. Joins arriving meanwhile cannot be covered by
    // the free tokens and are refused; when the body comes, the first join takes its token.
    const s = await startApp({ joinRatePerSecond: 1, joinBurst: 1 }, { clock: manualClock(1_000_000) });
    const { id } = await createSpace(s.url);
    const { port } = new URL(s.url);
    const body = '{"name":"first"}';
    const sock = tcpConnect(Number(port), '127.0.0.1');
    await new Promise((resolve) => sock.once('connect', resolve));
    const answer = new Promise<string>((resolve) => {
      let text = '';
      sock.on('data', (d: Buffer) => {
        text += d.toString('latin1');
        const end = text.indexOf('\r\n\r\n');
        if (end >= 0 && text.length >= end + 4 + Number(/content-length: (\d+)/i.exec(text.slice(0, end))?.[1] ?? 0)) resolve(text);
      });
    });
    sock.write(`POST /api/v1/spaces/${id}/join HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\n\r\n`);
    // a round trip on another connection, opened after those headers were sent, is answered after they were read
    expect((await api(s.url, 'GET', '/healthz')).status).toBe(200);
    const crowd = await Promise.all(Array.from({ length: 5 }, () => api<ErrBody>(s.url, 'POST', `/api/v1/spaces/${id}/join`)));
    expect(crowd.map((r) => `${r.status} ${r.body.error.code}`)).toEqual(Array(5).fill('429 RATE_LIMITED'));
    sock.write(body);
    const first = await answer;
    sock.destroy();
    expect(first).toMatch(/^HTTP\/1\.1 200 /);
    expect(JSON.parse(first.slice(first.indexOf('\r\n\r\n') + 4))).toMatchObject({ role: 'listener' });
    expect(s.app.server.joinTotals()).toEqual({ attempts: 6, admitted: 1 });
  });

  it('fails real joins as the replay model says the join path fails (gate availability 0)', async () => {
    const gate = settableGate();
    const s = await startApp({}, { replay: gate.view });
    const { id } = await createSpace(s.url);
    gate.set({ availability: 0, latencyMs: 0 });
    const r = await api<ErrBody & { error: { message: string } }>(s.url, 'POST', `/api/v1/spaces/${id}/join`);
    expect(r.status).toBe(503);
    expect(r.body.error).toMatchObject({ code: 'JOIN_FAILED', message: 'This Space is not available' });
    gate.set({ availability: 1, latencyMs: 0 });
    expect((await api(s.url, 'POST', `/api/v1/spaces/${id}/join`)).status).toBe(200);
    expect(s.app.server.joinTotals()).toEqual({ attempts: 2, admitted: 1 });
  });

  it('caps connections per address before the upgrade with 429 TOO_MANY_CONNECTIONS', async () => {
    const s = await startApp({ maxConnectionsPerAddress: 2 });
    const { id, hostToken } = await createSpace(s.url);
    await startSpace(s.url, id, hostToken);
    await joinAndConnect(s.url, id);
    await joinAndConnect(s.url, id);
    await expect(joinAndConnect(s.url, id)).rejects.toThrow('upgrade refused: 429');
  });
});
