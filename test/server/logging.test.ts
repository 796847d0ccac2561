import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { manualClock } from '../../src/clock.js';
import { createLogger, LogThrottle } from '../../src/logging.js';
import { api, createSpace, joinAndConnect, useApps, startSpace } from '../helpers/app.js';

function captured(): { stream: Writable; lines: () => Record<string, unknown>[] } {
  const out: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      out.push(chunk.toString());
      cb();
    },
  });
  return { stream, lines: () => out.join('').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>) };
}

describe('logs', () => {
  const startApp = useApps();

  it('are structured JSON from per-module child loggers, carry request ids, and say nothing per audio chunk at info', async () => {
    const log = captured();
    const s = await startApp({ chunkIntervalMs: 5 }, { logger: createLogger({ level: 'info', destination: log.stream }) });
    const { id, hostToken } = await createSpace(s.url);
    await startSpace(s.url, id, hostToken, true);
    const l = await joinAndConnect(s.url, id);
    await l.until((c) => c.binaries.length >= 50, '50 chunks');
    const r = await api(s.url, 'GET', '/api/v1/spaces/nope', undefined, { 'x-request-id': 'trace-42' });
    expect(r.headers.get('x-request-id')).toBe('trace-42');
    const bad = await api(s.url, 'GET', '/healthz', undefined, { 'x-request-id': 'no spaces allowed' });
    expect(bad.headers.get('x-request-id')).toMatch(/^r\d+$/);
    await s.close();
    const lines = log.lines();
    expect(lines.length).toBeGreaterThan(0);
    expect(lines.length).toBeLessThan(20); // 50+ chunks fanned out, a handful of lifecycle lines
    for (const line of lines) {
      expect(line).toMatchObject({ app: 'stampede', level: expect.any(Number), msg: expect.any(String) });
      expect(['server', 'hub']).toContain(line.module);
    }
    expect(lines.map((x) => x.msg)).toEqual(expect.arrayContaining(['listening', 'space live', 'draining', 'recording published', 'stopped']));
  });

  it('say once that the server started shedding and once that it stopped, however many joins it refused', async () => {
    const log = captured();
    let lagMs = 0;
    const s = await startApp({}, { logger: createLogger({ level: 'info', destination: log.stream }), loadSignal: { eventLoopLagMs: () => lagMs, heapUsedBytes: () => 0 } });
    const { id } = await createSpace(s.url);
    lagMs = 900;
    for (let i = 0; i < 25; i++) expect((await api(s.url, 'POST', `/api/v1/spaces/${id}/join`)).status).toBe(503);
    lagMs = 0;
    expect((await api(s.url, 'POST', `/api/v1/spaces/${id}/join`)).status).toBe(200);
    await s.close();
    const shedding = log.lines().filter((l) => String(l.msg).includes('shedding'));
    expect(shedding).toEqual([
      expect.objectContaining({ level: 40, reason: 'event_loop_lag', lagMs: 900, msg: expect.stringMatching(/^shedding load/) }),
      expect.objectContaining({ level: 30, lagMs: 0, msg: 'stopped shedding load' }),
    ]);
  });
});

describe('LogThrottle', () => {
  it('lets the first of a repeated warning through each interval, with how many it held back', async () => {
    const clock = manualClock(0);
    const t = new LogThrottle(() => clock.now(), 10_000);
    const let_ = (): (number | null)[] => Array.from({ length: 100 }, () => t.allow('request failed'));
    expect(let_().filter((x) => x !== null)).toEqual([0]);
    expect(t.allow('other')).toBe(0); // keys are counted apart
    await clock.advance(10_000);
    expect(let_().filter((x) => x !== null)).toEqual([99]);
  });
});
