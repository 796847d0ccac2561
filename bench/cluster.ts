import { execFileSync } from 'node:child_process';
import { constants } from 'node:fs';
import { access, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { WebSocket } from 'ws';
import { systemClock } from '../src/clock.js';
import { Cluster } from '../src/cluster/index.js';
import { ONE_ADDRESS_CROWD_SETS, setArgs } from '../src/config.js';
import type { Comparison, Entry } from './lib/entries.js';
import { processCpuMicros, spawnProc, type Pinning, type Proc } from './lib/proc.js';
import { shuffled } from './lib/stats.js';
import { Ticker } from './servers/child.js';

/**
 * The scale-out part of `npm run bench` (#14): 1, 2 and 3 Stampede instances sharing one space over
 * Redis behind haproxy, all up at once in the same run and measured in turn in a shuffled order each
 * round. The host sends a chunk every 100 ms into the first instance; the listeners join through the
 * proxy (leastconn spreads them over the instances), so every chunk crosses Redis to reach most of them.
 * Per instance count: delivered chunks/s, server-side CPU per delivered chunk (the instances, and the
 * instances with haproxy and Redis), and joins/s through the proxy (each join issues a ticket in Redis).
 * Every figure at 2 and 3 instances is a ratio against 1 instance, with its interval.
 */
export interface ClusterBenchConfig {
  counts: number[];
  listeners: number;
  rounds: number;
  warmupMs: number;
  measureMs: number;
  httpMs: number;
  httpConnections: number;
  connectBudgetMs: number;
}

/**
 * Shorter than the one-process parts (6 rounds, 2 s audio windows, 1.5 s of joins) so the part adds about
 * 2 minutes to `npm run bench`; a shorter BENCH_ROUNDS / BENCH_MEASURE_MS / BENCH_HTTP_MS shortens it too.
 */
export function clusterConfig(env: NodeJS.ProcessEnv): ClusterBenchConfig {
  const num = (k: string, d: number) => Number(env[k] ?? d);
  return {
    counts: (env.BENCH_CLUSTER_INSTANCES ?? '1,2,3').split(',').map(Number),
    listeners: num('BENCH_CLUSTER_LISTENERS', 1_000),
    rounds: num('BENCH_CLUSTER_ROUNDS', Math.min(6, num('BENCH_ROUNDS', 10))),
    warmupMs: num('BENCH_WARMUP_MS', 500),
    measureMs: num('BENCH_CLUSTER_MEASURE_MS', Math.min(2_000, num('BENCH_MEASURE_MS', 3_000))),
    httpMs: num('BENCH_CLUSTER_HTTP_MS', Math.min(1_500, num('BENCH_HTTP_MS', 2_000))),
    httpConnections: num('BENCH_HTTP_CONNECTIONS', 32),
    connectBudgetMs: num('BENCH_CONNECT_BUDGET_MS', 90_000),
  };
}

const BIN = fileURLToPath(new URL('../../bin/stampede.js', import.meta.url));
const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** The limits that protect a production server from a crowd, raised as for the one-process bench server: the figures measure the work, not refusals. */
const OPERATOR = `bench${Date.now().toString(36)}operatortoken`;
// one machine's load through the proxy is one address to the instances: per-address limits lifted
const SERVE_SETS = [...ONE_ADDRESS_CROWD_SETS, `operatorToken=${OPERATOR}`, 'maxListeners=1000000', 'maxConnections=60000', 'joinRatePerSecond=10000000', 'joinBurst=10000000', 'shedEventLoopLagMs=60000', 'heartbeatMs=3600000', 'shutdownDeadlineMs=1000'];

/** fetch, once more after a socket the server had already closed (a keep-alive connection reused just as it timed out). */
async function request(url: string, init?: RequestInit): Promise<Response> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fetch(url, { ...init, headers: { connection: 'close', ...(init?.headers as Record<string, string> | undefined) } });
    } catch (err) {
      if (attempt >= 3) throw err;
      await wait(200);
    }
  }
}

/** A process's CPU time so far (user + system, every thread), in µs. */
interface ClusterRound {
  instances: number;
  round: number;
  position: number;
  connected: number;
  received: number;
  expected: number;
  deliveredRatio: number;
  chunksPerSec: number;
  /** µs per delivered chunk: the Stampede instances; and with haproxy and Redis. */
  instanceCpuMicrosPerChunk: number;
  allCpuMicrosPerChunk: number;
  p99Ms: number;
  joinsPerSec: number;
  joinStatuses: Record<string, number>;
}

interface Live {
  n: number;
  cluster: Cluster;
  dir: string;
  spaceId: string;
  host: WebSocket;
  ticker: Ticker;
  swarm: Proc;
  connected: number;
  connectMs: number;
  /** How the listeners spread over the instances (their own count of real listeners). */
  spread: Record<string, number>;
}

async function startOne(n: number, pin: string | null, clientPin: string | null, cfg: ClusterBenchConfig, log: (s: string) => void): Promise<Live> {
  const dir = await mkdtemp(join(tmpdir(), `stampede-bench-cluster${n}-`));
  const cluster = new Cluster({ instances: n, port: 0, dir, clock: systemClock(), stampede: [process.execPath, BIN], logLevel: 'warn', demo: false, serveArgs: setArgs(SERVE_SETS) });
  try {
    await cluster.start();
    const p = cluster.pids();
    // the servers (instances, proxy, Redis) on the server CPU set, as every bench server
    if (pin) for (const pid of [...p.instances, p.proxy, p.redis]) if (pid) execFileSync('taskset', ['-a', '-cp', pin, String(pid)], { stdio: 'ignore' });
    const i1 = cluster.instance('i1').url;
    const res = await request(`${i1}/api/v1/spaces`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${OPERATOR}` }, body: JSON.stringify({ title: `bench ${n}`, scheduledStart: new Date().toISOString() }) });
    if (res.status !== 201) throw new Error(`create space: ${res.status} ${await res.text()}`);
    const created = (await res.json()) as { space: { id: string }; hostToken: string };
    const spaceId = created.space.id;
    const started = await request(`${i1}/api/v1/spaces/${spaceId}/start`, { method: 'POST', headers: { authorization: `Bearer ${created.hostToken}`, 'content-type': 'application/json' }, body: '{}' });
    if (!started.ok) throw new Error(`start space: ${started.status} ${await started.text()}`);
    const host = new WebSocket(`${i1.replace(/^http/, 'ws')}/ws?space=${spaceId}`, { headers: { authorization: `Bearer ${created.hostToken}` } });
    await new Promise<void>((resolve, reject) => {
      host.once('open', () => resolve());
      host.once('error', reject);
    });
    // every instance must know the space before listeners arrive through the proxy
    for (const inst of cluster.instances)
      for (let t = 0; (await request(`${inst.url}/api/v1/spaces/${spaceId}`)).status !== 200; t++) {
        if (t > 100) throw new Error(`${inst.id} never learned of the space`);
        await wait(100);
      }
    const swarm = spawnProc('swarm', [], clientPin);
    const t0 = Date.now();
    const { connected } = await swarm.call<{ connected: number }>('connect', { flavor: 'stampede', url: cluster.proxyUrl, n: cfg.listeners, spaceId, budgetMs: cfg.connectBudgetMs });
    const connectMs = Date.now() - t0;
    // the instances' status keys (GET /api/v1/cluster) refresh every second: read them once they count every listener
    let spread: Record<string, number> = {};
    for (const until = Date.now() + 3_000; ; await wait(200)) {
      const view = (await (await request(`${i1}/api/v1/cluster`)).json().catch(() => ({ instances: [] }))) as { instances: { id: string; listeners: number }[] };
      spread = Object.fromEntries(view.instances.map((i) => [i.id, i.listeners]));
      if (Object.values(spread).reduce((a, b) => a + b, 0) >= connected || Date.now() > until) break;
    }
    log(`  ${n} instance${n > 1 ? 's' : ''}: ${connected}/${cfg.listeners} listeners through haproxy in ${connectMs} ms; per instance ${JSON.stringify(spread)}`);
    return { n, cluster, dir, spaceId, host, ticker: new Ticker((chunk) => host.send(chunk)), swarm, connected, connectMs, spread };
  } catch (err) {
    await cluster.stop();
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}

async function stopOne(l: Live): Promise<void> {
  l.ticker.stop();
  await l.swarm.stop();
  l.host.terminate();
  await l.cluster.stop();
  await rm(l.dir, { recursive: true, force: true });
}

async function serverCpu(l: Live): Promise<{ instances: number; all: number }> {
  const p = l.cluster.pids();
  const inst = (await Promise.all(p.instances.map(processCpuMicros))).reduce((a, b) => a + b, 0);
  const others = (await Promise.all([p.proxy, p.redis].filter((x): x is number => !!x).map(processCpuMicros))).reduce((a, b) => a + b, 0);
  return { instances: inst, all: inst + others };
}

async function measure(l: Live, gen: Proc, cfg: ClusterBenchConfig, round: number, position: number): Promise<ClusterRound> {
  l.ticker.start();
  await wait(cfg.warmupMs);
  l.ticker.ticks = 0;
  const c0 = await serverCpu(l);
  await l.swarm.call('start');
  const t0 = performance.now();
  await wait(cfg.measureMs);
  const s = await l.swarm.call<{ received: number; p99Ms: number }>('stop');
  const seconds = (performance.now() - t0) / 1000;
  const ticks = l.ticker.ticks;
  const c1 = await serverCpu(l);
  l.ticker.stop();
  const { port } = new URL(l.cluster.proxyUrl);
  const j = await gen.call<{ perSec: number; statuses: Record<string, number> }>('closed', { host: '127.0.0.1', port: Number(port), method: 'POST', path: `/api/v1/spaces/${l.spaceId}/join`, body: '', connections: cfg.httpConnections, durationMs: cfg.httpMs, redeem: false });
  const chunks = Math.max(1, s.received);
  const expected = l.connected * ticks;
  return {
    instances: l.n,
    round,
    position,
    connected: l.connected,
    received: s.received,
    expected,
    deliveredRatio: expected ? s.received / expected : 0,
    chunksPerSec: s.received / seconds,
    instanceCpuMicrosPerChunk: (c1.instances - c0.instances) / chunks,
    allCpuMicrosPerChunk: (c1.all - c0.all) / chunks,
    p99Ms: s.p99Ms,
    joinsPerSec: j.perSec,
    joinStatuses: j.statuses,
  };
}

/** The programs the part needs that are not on PATH (Debian `redis-server` and `haproxy`). */
export async function missingPrograms(env: NodeJS.ProcessEnv, programs = ['redis-server', 'haproxy']): Promise<string[]> {
  const dirs = (env.PATH ?? '').split(delimiter).filter(Boolean);
  const found = async (p: string) => {
    for (const d of dirs) if (await access(join(d, p), constants.X_OK).then(() => true, () => false)) return true;
    return false;
  };
  const out: string[] = [];
  for (const p of programs) if (!(await found(p))) out.push(p);
  return out;
}

/**
 * Runs the part, or skips it when Redis or haproxy is not installed: a benchmark installs nothing on the
 * machine it measures. Returns the reason it skipped (printed, and kept in the results), or null.
 */
export async function partCluster(o: { env: NodeJS.ProcessEnv; pin: Pinning; random: () => number; log: (s: string) => void; compare: (c: Comparison) => Entry; raw: Record<string, unknown> }): Promise<string | null> {
  const cfg = clusterConfig(o.env);
  const { log } = o;
  const missing = await missingPrograms(o.env);
  if (missing.length) {
    const reason = `${missing.join(' and ')} not found on PATH (Debian: apt-get install ${missing.join(' ')})`;
    log(`scale-out: skipped, ${reason}`);
    o.raw.cluster = { config: cfg, skipped: reason };
    return reason;
  }
  log(`scale-out: ${cfg.counts.join(', ')} instances behind haproxy on Redis, ${cfg.listeners} listeners each`);
  const live: Live[] = [];
  const gen = spawnProc('loadgen', [], o.pin.client);
  const rounds: ClusterRound[] = [];
  try {
    // one cluster at a time comes up and connects its listeners, so connects do not compete; all stay up
    for (const n of cfg.counts) live.push(await startOne(n, o.pin.server, o.pin.client, cfg, log));
    for (let r = 0; r < cfg.rounds; r++) {
      const order = shuffled(live, o.random);
      for (let i = 0; i < order.length; i++) rounds.push(await measure(order[i]!, gen, cfg, r, i));
      const last = rounds.slice(-order.length).sort((a, b) => a.instances - b.instances);
      log(`  round ${r + 1}/${cfg.rounds}: ${last.map((x) => `${x.instances}× ${Math.round(x.chunksPerSec)} chunks/s ${x.allCpuMicrosPerChunk.toFixed(1)} µs/chunk ${Math.round(x.joinsPerSec)} joins/s`).join('; ')}`);
    }
  } finally {
    await gen.stop();
    await Promise.all(live.map(stopOne));
  }
  o.raw.cluster = { config: cfg, clusters: live.map((l) => ({ instances: l.n, connected: l.connected, connectMs: l.connectMs, spread: l.spread })), rounds };
  const of = (n: number, k: keyof ClusterRound) => rounds.filter((r) => r.instances === n).map((r) => r[k] as number);
  const flags = (n: number): string[] => {
    const l = live.find((x) => x.n === n)!;
    const out: string[] = [];
    if (l.connected < cfg.listeners) out.push(`${n} instances: connected ${l.connected} of ${cfg.listeners}`);
    const ratios = of(n, 'deliveredRatio').sort((a, b) => a - b);
    const median = ratios[Math.floor(ratios.length / 2)] ?? 0;
    if (median < 0.97) out.push(`${n} instances: delivered ${(median * 100).toFixed(1)}% of the chunks due`);
    const non200 = rounds.filter((r) => r.instances === n).reduce((a, r) => a + Object.entries(r.joinStatuses).reduce((b, [code, c]) => b + (code === '200' ? 0 : c), 0), 0);
    if (non200 > 0) out.push(`${n} instances: ${non200} joins not answered 200`);
    return out;
  };
  const base = cfg.counts[0]!;
  for (const n of cfg.counts.slice(1)) {
    const why = (...ks: string[]) => ks.join('; ') || undefined;
    const audio = why(...flags(n).filter((f) => !f.includes('joins')), ...flags(base).filter((f) => !f.includes('joins')));
    const joins = why(...flags(n).filter((f) => f.includes('joins')), ...flags(base).filter((f) => f.includes('joins')));
    const vs = `vs ${base} instance${base > 1 ? 's' : ''}`;
    const L = cfg.listeners.toLocaleString('en-US');
    o.compare({ part: 'cluster', name: `${n} instances behind haproxy: delivered chunks/s, ${L} listeners`, unit: 'chunks/s', better: 'higher', a: of(n, 'chunksPerSec'), baselineName: `${base} instance`, b: of(base, 'chunksPerSec'), excluded: audio });
    o.compare({ part: 'cluster', name: `${n} instances: CPU per delivered chunk, the Stampede instances, ${L} listeners`, unit: 'µs', better: 'lower', a: of(n, 'instanceCpuMicrosPerChunk'), baselineName: `${base} instance`, b: of(base, 'instanceCpuMicrosPerChunk'), excluded: audio });
    o.compare({ part: 'cluster', name: `${n} instances: CPU per delivered chunk, instances + haproxy + Redis, ${L} listeners`, unit: 'µs', better: 'lower', a: of(n, 'allCpuMicrosPerChunk'), baselineName: `${base} instance`, b: of(base, 'allCpuMicrosPerChunk'), excluded: audio });
    o.compare({ part: 'cluster', name: `${n} instances: p99 delivery latency from due time ${vs}`, unit: 'ms', better: 'lower', a: of(n, 'p99Ms'), baselineName: `${base} instance`, b: of(base, 'p99Ms'), excluded: audio });
    o.compare({ part: 'cluster', name: `${n} instances: joins/s through haproxy (${cfg.httpConnections} connections, closed loop)`, unit: 'joins/s', better: 'higher', a: of(n, 'joinsPerSec'), baselineName: `${base} instance`, b: of(base, 'joinsPerSec'), excluded: joins });
  }
  return null;
}
