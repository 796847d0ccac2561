import { readdirSync } from 'node:fs';
import { request } from 'node:http';
import { describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { api, createSpace, metricValue, startSpace, useApps } from '../helpers/app.js';

/** A join over a fresh connection (no keep-alive pool), so the file-descriptor count is only what the server and its sockets hold. */
function join(url: string, spaceId: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request(`${url}/api/v1/spaces/${spaceId}/join`, { method: 'POST', agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => (res.statusCode === 200 ? resolve((JSON.parse(body) as { wsUrl: string }).wsUrl) : reject(new Error(`join ${res.statusCode}: ${body}`))));
    });
    req.on('error', reject);
    req.end();
  });
}

const openFds = (): number => readdirSync('/proc/self/fd').length;

describe('a bounded soak', () => {
  const startApp = useApps();

  it('brings connections, rosters, gauges and open files back to where they started after rounds of joins and abrupt and clean leaves', async () => {
    const s = await startApp({ chunkIntervalMs: 20 });
    const { id, hostToken } = await createSpace(s.url);
    await startSpace(s.url, id, hostToken, true);
    const ROUNDS = 5;
    const PER_ROUND = 150;

    const round = async (): Promise<number> => {
      const sockets = await Promise.all(
        Array.from({ length: PER_ROUND }, async () => {
          const ws = new WebSocket(await join(s.url, id));
          let chunks = 0;
          ws.on('message', (_d, binary) => binary && chunks++);
          await new Promise<void>((resolve, reject) => {
            ws.once('open', () => resolve());
            ws.once('error', reject);
          });
          return { ws, chunks: () => chunks };
        }),
      );
      await expect.poll(() => metricValue(s.app, 'stampede_listeners', { kind: 'real' })).toBe(PER_ROUND);
      // everyone hears audio before leaving
      await expect.poll(() => Math.min(...sockets.map((x) => x.chunks())), { timeout: 10_000 }).toBeGreaterThan(2);
      const closed = sockets.map((x) => new Promise<void>((r) => x.ws.once('close', () => r())));
      // half leave cleanly, half vanish (RST, no close frame)
      sockets.forEach((x, i) => (i % 2 ? x.ws.close(1000) : x.ws.terminate()));
      await Promise.all(closed);
      await expect.poll(() => metricValue(s.app, 'stampede_listeners', { kind: 'real' })).toBe(0);
      await expect.poll(() => metricValue(s.app, 'stampede_ws_connections')).toBe(0);
      return Math.min(...sockets.map((x) => x.chunks()));
    };

    await round(); // warm-up: lazy modules and buffers settle
    const baseline = openFds();
    for (let r = 1; r < ROUNDS; r++) expect(await round()).toBeGreaterThan(2);

    expect((await api<{ space: { listeners: { real: number } } }>(s.url, 'GET', `/api/v1/spaces/${id}`)).body.space.listeners.real).toBe(0);
    // 600 more connections came and went; what the process holds open is back where it was
    await expect.poll(openFds, { timeout: 10_000 }).toBeLessThanOrEqual(baseline + 3);
    const closes = await s.app.metrics.registry.getSingleMetric('stampede_ws_closes_total')?.get();
    expect(closes?.values.reduce((a, v) => a + v.value, 0)).toBeGreaterThanOrEqual((ROUNDS * PER_ROUND) / 2);
  });
});
