import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { systemClock } from '../../src/clock.js';
import { Cluster } from '../../src/cluster/index.js';
import { checkOggOpus } from '../../src/audio/index.js';
import { peekAudioHeader } from '../../src/protocol/index.js';
import { BIN } from '../helpers/cli.js';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join as joinPath } from 'node:path';

interface SpaceView {
  id: string;
  state: string;
  listeners: { real: number; virtual: number; total: number };
}

async function json<T>(url: string, init?: RequestInit): Promise<{ status: number; body: T }> {
  const res = await fetch(url, init);
  return { status: res.status, body: (await res.json()) as T };
}

async function join(base: string, spaceId: string): Promise<{ ticket: string; wsUrl: string }> {
  for (;;) {
    const r = await json<{ ticket: string; wsUrl: string }>(`${base}/api/v1/spaces/${spaceId}/join`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    if (r.status === 200) return r.body;
    // a join refused while an instance leaves the pool is retried, as a client would
    if (r.status !== 503 && r.status !== 502) throw new Error(`join ${r.status}: ${JSON.stringify(r.body)}`);
    await new Promise((res) => setTimeout(res, 100 + Math.random() * 200));
  }
}

/**
 * A listener as a real client behaves: joins (here or through the proxy), listens, and after an
 * abnormal close joins again through the proxy with jittered backoff. Across all its connections it
 * checks that every chunk comes once and in order.
 */
class Listener {
  seqs: number[] = [];
  repeats = 0;
  reconnects = 0;
  lastCount: { real: number; virtual: number } | null = null;
  instanceClosed = false;
  /** Where it first connected: an instance directly, or the proxy. */
  firstUrl = '';
  onClose: ((code: number) => void) | null = null;
  private ws: WebSocket | null = null;
  private stopped = false;

  constructor(
    private readonly proxy: string,
    private readonly spaceId: string,
  ) {}

  async connect(wsUrl: string): Promise<void> {
    this.firstUrl ||= wsUrl;
    const ws = new WebSocket(wsUrl);
    this.ws = ws;
    ws.on('message', (data: Buffer, binary) => {
      if (!binary) {
        const m = JSON.parse(data.toString()) as { type: string; real?: number; virtual?: number };
        if (m.type === 'count') this.lastCount = { real: m.real!, virtual: m.virtual! };
        return;
      }
      const h = peekAudioHeader(data)!;
      const last = this.seqs.at(-1);
      if (last !== undefined && h.seq <= last) this.repeats++;
      this.seqs.push(h.seq);
    });
    ws.on('close', (code) => {
      this.onClose?.(code);
      if (this.stopped || code === 1000 || code === 4500 || code === 1001) return;
      this.instanceClosed = true;
      void this.again();
    });
    // after the handshake, errors end in 'close', which reconnects
    ws.on('error', () => undefined);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('unexpected-response', (_req, res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () => reject(new Error(`HTTP ${res.statusCode}: ${body}`)));
      });
      ws.once('error', reject);
    });
  }

  private async again(): Promise<void> {
    for (let attempt = 1; !this.stopped; attempt++) {
      await new Promise((r) => setTimeout(r, Math.random() * Math.min(2_000, 100 * 2 ** attempt)));
      try {
        const { wsUrl } = await join(this.proxy, this.spaceId);
        // the instance it lands on may be a chunk or two behind the one it lost: say what was heard
        const last = this.seqs.at(-1);
        await this.connect(last === undefined ? wsUrl : `${wsUrl}&after=${last}`);
        this.reconnects++;
        return;
      } catch {
        // the proxy may still route to the dead instance for a moment: back off and try again
      }
    }
  }

  get open(): boolean {
    return this.ws?.readyState === WebSocket.OPEN;
  }

  close(): void {
    this.stopped = true;
    this.ws?.close(1000);
  }
}

describe('three instances behind haproxy, sharing spaces over Redis (real processes on loopback)', () => {
  let dir = '';
  let cluster: Cluster;
  let spaceId = '';
  const listeners: Listener[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(joinPath(tmpdir(), 'stampede-cluster-'));
    cluster = new Cluster({ instances: 3, port: 0, dir, clock: systemClock(), stampede: [process.execPath, BIN], env: process.env, logLevel: 'info', checkIntervalMs: 250 });
    await cluster.start();
    const spaces = await json<{ spaces: SpaceView[] }>(`${cluster.instance('i1').url}/api/v1/spaces`);
    spaceId = spaces.body.spaces[0]!.id;
  });
  afterAll(async () => {
    for (const l of listeners) l.close();
    await cluster?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  const url = (id: string): string => cluster.instance(id).url;

  it('every instance knows the space the first one hosts', async () => {
    for (const id of ['i2', 'i3']) {
      await expect.poll(async () => (await json<{ space: SpaceView }>(`${url(id)}/api/v1/spaces/${spaceId}`)).body.space?.state, { timeout: 10_000 }).toBe('live');
    }
  });

  it('fans each chunk out on every instance, in order, once; a ticket from one instance is redeemed on another', async () => {
    // joined on one instance, connected to the next: the ticket is good anywhere, once
    const plan: [string, string][] = [['i1', 'i2'], ['i2', 'i3'], ['i3', 'i1'], ['i2', 'i2'], ['i3', 'i3'], ['i1', 'i3']];
    for (const [joinAt, connectTo] of plan) {
      const { ticket } = await join(url(joinAt), spaceId);
      const l = new Listener(cluster.proxyUrl, spaceId);
      await l.connect(`${url(connectTo).replace('http', 'ws')}/ws?ticket=${ticket}`).catch((e: Error) => { throw new Error(`${joinAt}→${connectTo}: ${e.message}`); });
      listeners.push(l);
    }
    const { ticket } = await join(url('i1'), spaceId);
    const first = new WebSocket(`${url('i2').replace('http', 'ws')}/ws?ticket=${ticket}`);
    await new Promise((r) => first.once('open', r));
    const again = new WebSocket(`${url('i3').replace('http', 'ws')}/ws?ticket=${ticket}`);
    again.on('error', () => undefined);
    const refused = await new Promise<number>((resolve) => again.once('unexpected-response', (_q, res) => resolve(res.statusCode ?? 0)));
    expect(refused).toBe(401);
    again.terminate();
    first.close(1000);
    await new Promise((r) => first.once('close', r));

    await expect.poll(() => Math.min(...listeners.map((l) => l.seqs.length)), { timeout: 15_000 }).toBeGreaterThanOrEqual(20);
    for (const l of listeners) {
      expect(l.repeats).toBe(0);
      // consecutive: every chunk of the host on i1 reached i2 and i3 too
      expect(l.seqs.at(-1)! - l.seqs[0]! + 1).toBe(l.seqs.length);
    }
  });

  it('counts listeners across instances the same way everywhere, and lists the instances through the proxy', async () => {
    const n = listeners.length;
    for (const id of ['i1', 'i2', 'i3']) {
      await expect.poll(async () => (await json<{ space: SpaceView }>(`${url(id)}/api/v1/spaces/${spaceId}`)).body.space.listeners.real, { timeout: 10_000 }).toBe(n);
    }
    await expect.poll(() => listeners.every((l) => l.lastCount?.real === n), { timeout: 10_000 }).toBe(true);
    const c = await json<{ instances: { id: string; state: string; listeners: number }[] }>(`${cluster.proxyUrl}/api/v1/cluster`);
    expect(c.status).toBe(200);
    // each instance's status is a key refreshed every second: poll, a busy machine may be late
    await expect.poll(async () => (await json<{ instances: { id: string; state: string }[] }>(`${cluster.proxyUrl}/api/v1/cluster`)).body.instances.map((i) => [i.id, i.state]), { timeout: 10_000 }).toEqual([['i1', 'ready'], ['i2', 'ready'], ['i3', 'ready']]);
    await expect.poll(async () => (await json<{ instances: { listeners: number }[] }>(`${cluster.proxyUrl}/api/v1/cluster`)).body.instances.reduce((s, i) => s + i.listeners, 0), { timeout: 5_000 }).toBe(n);
  });

  it('recovers from a killed instance: its listeners come back through the proxy, nothing repeats, counts converge', async () => {
    // listeners that came in through the proxy, spread by leastconn over the three instances
    for (let k = 0; k < 6; k++) {
      const { wsUrl } = await join(cluster.proxyUrl, spaceId);
      const l = new Listener(cluster.proxyUrl, spaceId);
      await l.connect(wsUrl);
      listeners.push(l);
    }
    const onI3 = listeners.filter((l) => l.firstUrl.startsWith(url('i3').replace('http', 'ws')));
    expect(onI3.length).toBe(3);
    await cluster.killInstance('i3');
    // the kill is seen by each client when its socket closes, not when the process is gone: await it
    await expect.poll(() => onI3.every((l) => l.instanceClosed), { timeout: 15_000 }).toBe(true);
    await expect.poll(() => listeners.every((l) => l.open), { timeout: 15_000 }).toBe(true);
    const marks = listeners.map((l) => l.seqs.length);
    await expect.poll(() => listeners.every((l, k) => l.seqs.length >= marks[k]! + 10), { timeout: 15_000 }).toBe(true);
    for (const l of listeners) expect(l.repeats).toBe(0);
    const n = listeners.length;
    for (const id of ['i1', 'i2']) {
      await expect.poll(async () => (await json<{ space: SpaceView }>(`${url(id)}/api/v1/spaces/${spaceId}`)).body.space.listeners.real, { timeout: 10_000 }).toBe(n);
    }
    await expect.poll(async () => (await json<{ instances: { id: string }[] }>(`${cluster.proxyUrl}/api/v1/cluster`)).body.instances.map((i) => i.id), { timeout: 10_000 }).toEqual(['i1', 'i2']);
  });

  it('rides out a Redis restart: instances resubscribe, say so in log and metrics, and fan-out resumes', async () => {
    await cluster.restartRedis();
    for (const id of ['i1', 'i2']) {
      await expect.poll(() => readFile(cluster.instance(id).logFile, 'utf8'), { timeout: 15_000 }).toContain('"msg":"Redis is back: resubscribed"');
      expect(await readFile(cluster.instance(id).logFile, 'utf8')).toContain('"msg":"lost Redis: reconnecting with backoff');
      await expect.poll(async () => (await fetch(`${url(id)}/metrics`)).text(), { timeout: 15_000 }).toMatch(/stampede_cluster_redis_reconnects_total 1\b/);
      await expect.poll(async () => (await fetch(`${url(id)}/metrics`)).text(), { timeout: 5_000 }).toMatch(/stampede_cluster_redis_up 1\b/);
    }
    const marks = listeners.map((l) => l.seqs.length);
    await expect.poll(() => listeners.every((l, k) => l.seqs.length >= marks[k]! + 10), { timeout: 15_000 }).toBe(true);
    for (const l of listeners) expect(l.repeats).toBe(0);
    // after the restart a ticket from one instance is again good on the other
    const { ticket } = await join(url('i2'), spaceId);
    const l = new Listener(cluster.proxyUrl, spaceId);
    await l.connect(`${url('i1').replace('http', 'ws')}/ws?ticket=${ticket}`);
    listeners.push(l);
  });

  it('keeps the space when the instance that created it dies: another takes it over, its synthetic host speaks again, nothing repeats', async () => {
    // i3 comes back first and learns the space from the others' announcements
    await cluster.restartInstance('i3');
    await expect.poll(async () => (await json<{ space: SpaceView }>(`${url('i3')}/api/v1/spaces/${spaceId}`)).body.space?.state, { timeout: 10_000 }).toBe('live');
    const onI1 = listeners.filter((l) => l.firstUrl.startsWith(url('i1').replace('http', 'ws')));
    expect(onI1.length).toBeGreaterThan(0);
    await cluster.killInstance('i1');
    await expect.poll(() => onI1.every((l) => l.instanceClosed), { timeout: 15_000 }).toBe(true);
    // exactly one survivor takes the lease once i1 has been silent for three intervals
    const takeovers = async (): Promise<number[]> => Promise.all(['i2', 'i3'].map(async (id) => Number(/stampede_cluster_takeovers_total (\d+)/.exec(await (await fetch(`${url(id)}/metrics`)).text())?.[1])));
    await expect.poll(async () => (await takeovers()).reduce((a, b) => a + b, 0), { timeout: 15_000 }).toBe(1);
    await expect.poll(() => listeners.every((l) => l.open), { timeout: 15_000 }).toBe(true);
    const marks = listeners.map((l) => l.seqs.length);
    await expect.poll(() => listeners.every((l, k) => l.seqs.length >= marks[k]! + 10), { timeout: 15_000 }).toBe(true);
    for (const l of listeners) expect(l.repeats).toBe(0);
    expect((await json<{ space: SpaceView }>(`${cluster.proxyUrl}/api/v1/spaces/${spaceId}`)).body.space.state).toBe('live');
  });

  it('writes the recording once, across the takeover, and any instance serves it through the proxy when the space ends', async () => {
    const owner = (await Promise.all(['i2', 'i3'].map(async (id) => [id, await readFile(cluster.instance(id).logFile, 'utf8')] as const))).find(([, log]) => log.includes('"msg":"took over a space whose owner went silent"'))![0];
    const other = owner === 'i2' ? 'i3' : 'i2';
    expect(await readFile(cluster.instance(owner).logFile, 'utf8')).toContain('"msg":"recording continued from the shared directory"');
    const closes = listeners.map((l) => new Promise<number>((r) => (l.onClose = r)));
    // the owner drains: it ends the space (its listeners hear 1001, the other's 4500) and publishes the recording
    await cluster.instance(owner).process.stop();
    await expect.poll(async () => (await json<{ space: SpaceView & { chunks: number; recordingReady: boolean } }>(`${url(other)}/api/v1/spaces/${spaceId}`)).body.space.state, { timeout: 10_000 }).toBe('ended');
    for (const code of await Promise.all(closes)) expect([1001, 4500]).toContain(code);
    expect((await readdir(cluster.recordingDir)).sort()).toEqual([`${spaceId}.opus`]);
    const published = async (id: string): Promise<number> => (await readFile(cluster.instance(id).logFile, 'utf8')).split('\n').filter((l) => l.includes('"msg":"recording published"')).length;
    expect([await published('i1'), await published(owner), await published(other)]).toEqual([0, 1, 0]);

    // through the proxy (only the other instance is left): the whole file, every chunk from the first to the last
    const view = (await json<{ space: { chunks: number; recordingReady: boolean } }>(`${cluster.proxyUrl}/api/v1/spaces/${spaceId}`)).body.space;
    expect(view.recordingReady).toBe(true);
    const res = await fetch(`${cluster.proxyUrl}/api/v1/spaces/${spaceId}/recording`);
    expect(res.status).toBe(200);
    const file = Buffer.from(await res.arrayBuffer());
    const check = checkOggOpus(file);
    expect(check.problems).toEqual([]);
    expect(Number(res.headers.get('x-stampede-chunks'))).toBe(check.pages - 2);
    expect(check.pages - 2).toBe(view.chunks);
    const heard = Math.max(...listeners.flatMap((l) => l.seqs));
    expect(heard).toBeLessThan(view.chunks);
  });
});
