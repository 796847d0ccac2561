import { afterEach, describe, expect, it } from 'vitest';
import { systemClock } from '../../src/clock.js';
import { Cluster, startHaproxy, type RunningHaproxy } from '../../src/cluster/index.js';
import { ONE_ADDRESS_CROWD_SETS, parseServerConfig } from '../../src/config.js';
import { http, type HttpReply } from '../../src/load/probe.js';
import { OPERATOR, useApps } from '../helpers/app.js';
import { useTempDir } from '../helpers/tmp.js';

type ErrBody = { error: { code: string } };
const code = (r: HttpReply): string => (r.body as ErrBody).error?.code ?? String(r.status);

/**
 * docs/reliability.md #13: behind haproxy (`option forwardfor`) the instance counts each client by the
 * address the proxy saw, so one address's flood is limited and another address still gets in; a client
 * cannot pick its own address by writing X-Forwarded-For, to the proxy or straight to the instance.
 * Clients bind 127.0.0.2–.4: loopback answers on all of 127/8.
 */
describe('per-address limits behind a real haproxy', () => {
  const startApp = useApps();
  const dir = useTempDir('stampede-xff-');
  let proxy: RunningHaproxy | null = null;
  afterEach(async () => {
    await proxy?.process.stop();
    proxy = null;
  });

  it('limits the flooding address through the proxy, admits another, and ignores X-Forwarded-For from an untrusted peer', async () => {
    // three joins per address, then (practically) none: 0.001 tokens a second
    const s = await startApp({ trustedProxies: ['127.0.0.1'], joinRatePerAddress: 0.001, joinBurstPerAddress: 3, maxTicketsPerAddress: 50 });
    const direct = new URL(s.url);
    const c = await http(direct, 'POST', '/api/v1/spaces', { body: { title: 't', scheduledStart: new Date().toISOString() }, headers: OPERATOR });
    const join = `/api/v1/spaces/${(c.body as { space: { id: string } }).space.id}/join`;
    proxy = await startHaproxy({ dir: dir(), port: 0, clock: systemClock(), checkIntervalMs: 200, servers: [{ name: 'i1', address: direct.host }] });
    const viaProxy = new URL(proxy.url);

    // the flooder through the proxy, each request claiming another address: the proxy appends the one it saw
    const flood: HttpReply[] = [];
    for (let i = 0; i < 6; i++) flood.push(await http(viaProxy, 'POST', join, { localAddress: '127.0.0.2', headers: { 'x-forwarded-for': `203.0.113.${i}` } }));
    expect(flood.map(code)).toEqual(['200', '200', '200', 'RATE_LIMITED', 'RATE_LIMITED', 'RATE_LIMITED']);
    expect(flood[3]!.status).toBe(429);
    // another address through the same proxy (the same peer to the instance) is its own client
    const other = await http(viaProxy, 'POST', join, { localAddress: '127.0.0.3' });
    expect(other.status).toBe(200);

    // straight to the instance from a peer that is not a trusted proxy: the header is ignored
    const spoof: HttpReply[] = [];
    for (let i = 0; i < 5; i++) spoof.push(await http(direct, 'POST', join, { localAddress: '127.0.0.4', headers: { 'x-forwarded-for': `198.51.100.${i}` } }));
    expect(spoof.map(code)).toEqual(['200', '200', '200', 'RATE_LIMITED', 'RATE_LIMITED']);
    // …and it cannot borrow the flooder's or anyone's budget: 127.0.0.3 still has two joins left
    expect((await http(viaProxy, 'POST', join, { localAddress: '127.0.0.3' })).status).toBe(200);
  });

  it('stampede cluster trusts its proxy and keeps the per-address limits on; a one-machine load lifts them itself', () => {
    const cluster = new Cluster({ instances: 2, port: 0, dir: dir(), clock: systemClock(), stampede: ['node', 'bin/stampede.js'] });
    const args = cluster.serveArgs(1, 9001);
    const sets = args.flatMap((a, k) => (args[k - 1] === '--set' ? [a] : []));
    expect(sets).toContain('trustedProxies=["127.0.0.1"]');
    for (const s of ONE_ADDRESS_CROWD_SETS) expect(sets).not.toContain(s);
    const lifted = new Cluster({ instances: 1, port: 0, dir: dir(), clock: systemClock(), stampede: ['node'], serveArgs: ONE_ADDRESS_CROWD_SETS.flatMap((kv) => ['--set', kv]) });
    expect(lifted.serveArgs(1, 9001).slice(-2)).toEqual(['--set', ONE_ADDRESS_CROWD_SETS.at(-1)]);
  });

  it('takes addresses and CIDR blocks as trusted proxies, and refuses anything else with a coded error', () => {
    expect(parseServerConfig({ trustedProxies: ['10.0.0.1', '172.28.0.0/24', '::1', 'fd00::/8'] }).trustedProxies).toHaveLength(4);
    for (const bad of ['proxy.example', '10.0.0.0/33', '10.0.0.1/8/1', '']) {
      expect(() => parseServerConfig({ trustedProxies: [bad] }), bad).toThrow(/CONFIG_INVALID|trustedProxies.*expected an IP address or a CIDR block/);
    }
  });
});
