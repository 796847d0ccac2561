import { connect as netConnect } from 'node:net';
import type { IncomingMessage } from 'node:http';
import { describe, expect, it } from 'vitest';
import { clientAddress } from '../../src/server/http-util.js';
import { api, useApps } from '../helpers/app.js';

describe('slow and lying clients', () => {
  const startApp = useApps();

  it('drops a slowloris that never finishes its headers, and keeps serving others', async () => {
    const s = await startApp({ headersTimeoutMs: 1_000, requestTimeoutMs: 2_000 });
    const { port } = new URL(s.url);
    const sock = netConnect(Number(port), '127.0.0.1');
    let reply = '';
    sock.on('data', (d) => (reply += d.toString()));
    await new Promise((r) => sock.once('connect', r));
    sock.write('GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ');
    const t0 = Date.now();
    await new Promise((r) => sock.once('close', r));
    expect(reply).toMatch(/^HTTP\/1\.1 408/);
    expect(Date.now() - t0).toBeLessThan(5_000);
    expect((await api(s.url, 'GET', '/healthz')).status).toBe(200);
  });

  it('believes X-Forwarded-For only from a configured proxy', () => {
    const req = (peer: string, xff?: string) => ({ socket: { remoteAddress: peer }, headers: xff ? { 'x-forwarded-for': xff } : {} }) as unknown as IncomingMessage;
    expect(clientAddress(req('203.0.113.9', '1.2.3.4'), [])).toBe('203.0.113.9');
    expect(clientAddress(req('10.0.0.2', '1.2.3.4'), ['10.0.0.1'])).toBe('10.0.0.2');
    expect(clientAddress(req('10.0.0.1', '6.6.6.6, 1.2.3.4'), ['10.0.0.1'])).toBe('1.2.3.4');
    expect(clientAddress(req('10.0.0.1', '1.2.3.4, 10.0.0.1'), ['10.0.0.1'])).toBe('1.2.3.4');
    expect(clientAddress(req('10.0.0.1'), ['10.0.0.1'])).toBe('10.0.0.1');
    // CIDR blocks, IPv4-mapped peers, and a garbage hop that ends the chain
    expect(clientAddress(req('::ffff:172.28.0.10', '198.51.100.7'), ['172.28.0.0/24'])).toBe('198.51.100.7');
    expect(clientAddress(req('172.28.0.10', '6.6.6.6, not-an-address'), ['172.28.0.0/24'])).toBe('172.28.0.10');
    expect(clientAddress(req('::ffff:10.0.0.9', '1.2.3.4'), ['10.0.0.1'])).toBe('10.0.0.9');
  });
});
