import { writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import { systemClock } from '../../src/clock.js';
import { checkHaproxyConfig, haproxyConfig, startHaproxy, type RunningHaproxy } from '../../src/cluster/index.js';
import { useTempDir } from '../helpers/tmp.js';

interface Backend {
  name: string;
  server: Server;
  port: number;
  ready: boolean;
  forwardedFor: string[];
}

/** A stand-in instance: answers its name, /readyz as told, and echoes WebSocket messages with its name. */
async function backend(name: string): Promise<Backend> {
  const b: Backend = { name, server: createServer(), port: 0, ready: true, forwardedFor: [] };
  b.server.on('request', (req, res) => {
    if (req.url === '/readyz') {
      res.writeHead(b.ready ? 200 : 503).end();
      return;
    }
    b.forwardedFor.push(String(req.headers['x-forwarded-for']));
    res.end(name);
  });
  const wss = new WebSocketServer({ server: b.server });
  wss.on('connection', (ws) => ws.on('message', (m) => ws.send(`${name}:${m.toString()}`)));
  await new Promise<void>((r) => b.server.listen(0, '127.0.0.1', r));
  b.port = (b.server.address() as AddressInfo).port;
  return b;
}

async function get(url: string): Promise<{ status: number; body: string }> {
  const res = await fetch(url, { headers: { connection: 'close' } });
  return { status: res.status, body: await res.text() };
}

function wsEcho(url: string): Promise<{ ws: WebSocket; reply: string }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    ws.once('error', reject);
    ws.once('open', () => ws.send('hi'));
    ws.once('message', (m) => resolve({ ws, reply: m.toString() }));
  });
}

describe('haproxy in front of instances (real haproxy, real sockets)', () => {
  const dir = useTempDir('stampede-haproxy-');
  let proxy: RunningHaproxy | null = null;
  let backends: Backend[] = [];

  afterEach(async () => {
    await proxy?.process.stop();
    proxy = null;
    for (const b of backends) {
      b.server.closeAllConnections();
      await new Promise((r) => b.server.close(r));
    }
    backends = [];
  });

  async function up(n: number): Promise<RunningHaproxy> {
    backends = await Promise.all(Array.from({ length: n }, (_, k) => backend(`i${k + 1}`)));
    proxy = await startHaproxy({ dir: dir(), port: 0, clock: systemClock(), checkIntervalMs: 200, servers: backends.map((b) => ({ name: b.name, address: `127.0.0.1:${b.port}` })) });
    return proxy;
  }

  it('generates a configuration haproxy accepts, and a broken one is refused with its reason', async () => {
    const file = join(dir(), 'ok.cfg');
    await writeFile(file, haproxyConfig({ bind: '127.0.0.1:18080', statsBind: '127.0.0.1:18081', servers: [{ name: 'i1', address: '127.0.0.1:18082' }] }));
    await expect(checkHaproxyConfig(file)).resolves.toBeUndefined();
    const compose = haproxyConfig({ bind: '0.0.0.0:8080', statsBind: null, hostnames: true, servers: [{ name: 'i1', address: 'stampede-1:8080' }] });
    expect(compose).toContain('init-addr last,libc,none');
    const bad = join(dir(), 'bad.cfg');
    await writeFile(bad, haproxyConfig({ bind: '127.0.0.1:18080', statsBind: null, servers: [] }).replace('balance leastconn', 'balance sideways'));
    await expect(checkHaproxyConfig(bad)).rejects.toThrow(/HAPROXY_CONFIG_INVALID: .*balance only supports/s);
  });

  it('balances HTTP across the instances and forwards the client address', async () => {
    const p = await up(2);
    const seen = new Set<string>();
    for (let k = 0; k < 10; k++) {
      const r = await get(`${p.url}/api/v1/spaces`);
      expect(r.status).toBe(200);
      seen.add(r.body);
    }
    expect([...seen].sort()).toEqual(['i1', 'i2']);
    expect(backends.flatMap((b) => b.forwardedFor)).toContain('127.0.0.1');
  });

  it('carries WebSocket upgrades to the instances, spread across them', async () => {
    const p = await up(2);
    // one after another, so that leastconn sees each open socket before it places the next
    const conns: { ws: WebSocket; reply: string }[] = [];
    for (let k = 0; k < 4; k++) conns.push(await wsEcho(`${p.url.replace('http', 'ws')}/ws`));
    // leastconn: four open sockets end up two and two
    expect(conns.map((c) => c.reply.split(':')[0]).sort()).toEqual(['i1', 'i1', 'i2', 'i2']);
    for (const c of conns) c.ws.close();
  });

  it('takes a draining instance (/readyz 503) out of the pool and leaves its open sockets alone', async () => {
    const p = await up(2);
    const sockets = await Promise.all(Array.from({ length: 2 }, () => wsEcho(`${p.url.replace('http', 'ws')}/ws`)));
    const onI2 = sockets.find((s) => s.reply.startsWith('i2:'))!;
    backends[1]!.ready = false;
    // the health check runs every 200 ms and needs two misses
    await expect.poll(async () => {
      const bodies = await Promise.all(Array.from({ length: 6 }, async () => (await get(`${p.url}/x`)).body));
      return new Set(bodies).size === 1 && bodies[0] === 'i1';
    }, { timeout: 10_000, interval: 200 }).toBe(true);
    const fresh = await wsEcho(`${p.url.replace('http', 'ws')}/ws`);
    expect(fresh.reply).toBe('i1:hi');
    // the socket already on the draining instance still works: the instance closes it (1001), not the proxy
    const echoed = new Promise<string>((r) => onI2.ws.once('message', (m) => r(m.toString())));
    onI2.ws.send('still here');
    expect(await echoed).toBe('i2:still here');
    for (const s of [...sockets, fresh]) s.ws.close();
    await expect.poll(async () => (await fetch(p.statsUrl.replace('/stats', '/metrics'))).text(), { timeout: 5_000 }).toMatch(/haproxy_server_status\{proxy="instances",server="i2",state="DOWN"\} 1/);
  });

  it('redispatches requests away from an instance that died, before the health check notices', async () => {
    const p = await up(2);
    const dead = backends[1]!;
    dead.server.closeAllConnections();
    await new Promise((r) => dead.server.close(r));
    const statuses = await Promise.all(Array.from({ length: 8 }, async () => (await get(`${p.url}/x`)).status));
    expect(statuses).toEqual(Array(8).fill(200));
    await expect.poll(() => p.process.tail(50), { timeout: 5_000 }).toMatch(/Server instances\/i2 is DOWN/);
  });
});
