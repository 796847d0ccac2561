import { fork } from 'node:child_process';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { startServer, type ServerChild } from './lib/child.js';
import { BenchSwarm, type Flavor } from './lib/swarm.js';

/**
 * `npm run bench`: Stampede against baselines measured in the same run, on the same machine, with the
 * same clients. Every server runs in its own process and reports its own CPU time. Loopback only;
 * every part is bounded. Writes bench/results/latest.json and latest.md.
 */
interface Entry {
  part: string;
  name: string;
  figure: number;
  unit: string;
  baselineName: string;
  baseline: number;
  ratio: number;
  better: 'higher' | 'lower';
  detail?: Record<string, unknown>;
}

const entries: Entry[] = [];
const WARMUP_MS = Number(process.env.BENCH_WARMUP_MS ?? 2_000);
const MEASURE_MS = Number(process.env.BENCH_MEASURE_MS ?? 5_000);
const FANOUT_ROUNDS = Number(process.env.BENCH_FANOUT_ROUNDS ?? 3);
const HTTP_SECONDS = Number(process.env.BENCH_HTTP_SECONDS ?? 5);
const HTTP_ROUNDS = Number(process.env.BENCH_HTTP_ROUNDS ?? 3);
const METRICS_LISTENERS = Number(process.env.BENCH_METRICS_LISTENERS ?? 2_000);
const SIZES = (process.env.BENCH_SIZES ?? '1000,2000,5000').split(',').map(Number);
const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));
const round = (n: number, d = 2) => Math.round(n * 10 ** d) / 10 ** d;

function add(e: Omit<Entry, 'ratio'>): void {
  entries.push({ ...e, ratio: e.baseline > 0 ? round(e.figure / e.baseline, 3) : 0 });
}

interface FanoutFigure {
  connected: number;
  chunksPerSec: number;
  cpuMicrosPerChunk: number;
  chunksPerCpuSec: number;
  p50: number;
  p99: number;
}

async function fanout(server: string, flavor: Flavor, n: number): Promise<FanoutFigure> {
  const s = await startServer(server);
  const swarm = new BenchSwarm();
  try {
    const connected = await swarm.connect(flavor, s.url, n, s.spaceId);
    await wait(WARMUP_MS);
    const cpu0 = await s.cpu();
    const t0 = Date.now();
    swarm.measuring = true;
    await wait(MEASURE_MS);
    swarm.measuring = false;
    const cpu1 = await s.cpu();
    const secs = (Date.now() - t0) / 1000;
    const chunks = swarm.received;
    return {
      connected,
      chunksPerSec: round(chunks / secs, 0),
      cpuMicrosPerChunk: round((cpu1 - cpu0) / Math.max(1, chunks), 3),
      chunksPerCpuSec: round(chunks / ((cpu1 - cpu0) / 1e6), 0),
      p50: swarm.delay.getValueAtPercentile(50),
      p99: swarm.delay.getValueAtPercentile(99),
    };
  } finally {
    swarm.close();
    await s.stop();
  }
}

/** The round whose chunks per CPU-second is the median of the rounds (so its other figures go with it). */
function medianRound(rounds: FanoutFigure[]): FanoutFigure {
  return [...rounds].sort((a, b) => a.chunksPerCpuSec - b.chunksPerCpuSec)[Math.floor(rounds.length / 2)]!;
}

async function partFanout(): Promise<void> {
  // The three servers are measured in turn, ROUNDS times, so drift on a shared machine hits all of them.
  for (const n of SIZES) {
    const runs: Record<'st' | 'ws' | 'sio', FanoutFigure[]> = { st: [], ws: [], sio: [] };
    for (let r = 0; r < FANOUT_ROUNDS; r++) {
      runs.st.push(await fanout('stampede', 'stampede', n));
      runs.ws.push(await fanout('bare-ws', 'ws', n));
      runs.sio.push(await fanout('socketio', 'socketio', n));
    }
    const st = medianRound(runs.st);
    const ws = medianRound(runs.ws);
    const sio = medianRound(runs.sio);
    console.log(`fan-out ${n}: stampede ${JSON.stringify(runs.st)}\n             ws ${JSON.stringify(runs.ws)}\n             socket.io ${JSON.stringify(runs.sio)}`);
    const detail = (f: FanoutFigure) => ({ connected: f.connected, chunksPerSec: f.chunksPerSec, expectedPerSec: f.connected * 10, p50ms: f.p50, p99ms: f.p99, cpuMicrosPerChunk: f.cpuMicrosPerChunk });
    add({ part: 'fanout', name: `chunks per server CPU-second, ${n} listeners, vs bare ws`, figure: st.chunksPerCpuSec, unit: 'chunks/cpu-s', baselineName: 'bare ws', baseline: ws.chunksPerCpuSec, better: 'higher', detail: { ...detail(st), rounds: FANOUT_ROUNDS, baselineDetail: detail(ws) } });
    add({ part: 'fanout', name: `chunks per server CPU-second, ${n} listeners, vs Socket.IO`, figure: st.chunksPerCpuSec, unit: 'chunks/cpu-s', baselineName: 'Socket.IO', baseline: sio.chunksPerCpuSec, better: 'higher', detail: { ...detail(st), rounds: FANOUT_ROUNDS, baselineDetail: detail(sio) } });
    add({ part: 'fanout', name: `p99 delivery latency, ${n} listeners, vs bare ws`, figure: st.p99, unit: 'ms', baselineName: 'bare ws', baseline: ws.p99, better: 'lower', detail: { p50ms: st.p50, baselineP50ms: ws.p50 } });
    add({ part: 'fanout', name: `p99 delivery latency, ${n} listeners, vs Socket.IO`, figure: st.p99, unit: 'ms', baselineName: 'Socket.IO', baseline: sio.p99, better: 'lower', detail: { p50ms: st.p50, baselineP50ms: sio.p50 } });
    add({ part: 'fanout', name: `delivered chunks/s, ${n} listeners (${n * 10} expected), vs bare ws`, figure: st.chunksPerSec, unit: 'chunks/s', baselineName: 'bare ws', baseline: ws.chunksPerSec, better: 'higher' });
    add({ part: 'fanout', name: `delivered chunks/s, ${n} listeners (${n * 10} expected), vs Socket.IO`, figure: st.chunksPerSec, unit: 'chunks/s', baselineName: 'Socket.IO', baseline: sio.chunksPerSec, better: 'higher', detail: { baselineConnected: sio.connected } });
  }
}

interface HttpFigure {
  rps: number;
  p99: number;
  cpuMicrosPerRequest: number;
}

/** autocannon against one server child: throughput, p99 and the server's own CPU per request. */
async function cannon(server: ServerChild, method: 'GET' | 'POST', path: string): Promise<HttpFigure> {
  const opts = { url: server.url + path, method, connections: 50, ...(method === 'POST' ? { headers: { 'content-type': 'application/json' }, body: '{}' } : {}) };
  // warm-up: both sides are measured after their code is compiled and their pools are full
  await autocannon({ ...opts, duration: Math.max(1, WARMUP_MS / 1000) });
  const cpu0 = await server.cpu();
  const r = await autocannon({ ...opts, duration: HTTP_SECONDS });
  const cpu1 = await server.cpu();
  if (r.non2xx > 0 || r.errors > 0) console.warn(`  ${method} ${path}: ${r.non2xx} non-2xx, ${r.errors} errors`);
  return { rps: round(r.requests.average, 0), p99: r.latency.p99, cpuMicrosPerRequest: round((cpu1 - cpu0) / Math.max(1, r.requests.total), 2) };
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function partJoin(): Promise<void> {
  // autocannon and the server share two cores, so each pair is measured ROUNDS times, alternating,
  // and the medians are compared; CPU per request is the server's own and does not depend on the client.
  for (const [label, method, path] of [['join', 'POST', 'join'], ['space details', 'GET', '']] as const) {
    const st: HttpFigure[] = [];
    const bare: HttpFigure[] = [];
    for (let round = 0; round < HTTP_ROUNDS; round++) {
      for (const [name, into] of [['stampede', st], ['bare-http', bare]] as const) {
        const s = await startServer(name);
        try {
          into.push(await cannon(s, method, `/api/v1/spaces/${s.spaceId}${path ? `/${path}` : ''}`));
        } finally {
          await s.stop();
        }
      }
    }
    const medians = (fs: HttpFigure[]) => ({ rps: median(fs.map((f) => f.rps)), p99: median(fs.map((f) => f.p99)), cpu: median(fs.map((f) => f.cpuMicrosPerRequest)) });
    const a = medians(st);
    const b = medians(bare);
    console.log(`join path ${label}: stampede ${JSON.stringify(st)}\n             bare ${JSON.stringify(bare)}`);
    add({ part: 'join', name: `${label}: requests/s vs bare node:http`, figure: a.rps, unit: 'req/s', baselineName: 'bare node:http', baseline: b.rps, better: 'higher', detail: { p99ms: a.p99, baselineP99ms: b.p99, rounds: HTTP_ROUNDS } });
    add({ part: 'join', name: `${label}: p99 latency vs bare node:http`, figure: a.p99, unit: 'ms', baselineName: 'bare node:http', baseline: b.p99, better: 'lower' });
    add({ part: 'join', name: `${label}: server CPU per request vs bare node:http`, figure: a.cpu, unit: 'µs', baselineName: 'bare node:http', baseline: b.cpu, better: 'lower' });
  }
}

function replayChild(scale: number): Promise<{ ms: number; maxRssMiB: number; peak: number }> {
  const file = fileURLToPath(new URL('./replay-child.js', import.meta.url));
  return new Promise((resolve, reject) => {
    const c = fork(file, [String(scale)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    c.once('message', (m: { ms: number; maxRssMiB: number; peak: number }) => resolve(m));
    c.once('exit', (code) => code !== 0 && reject(new Error(`replay child exited ${code}`)));
  });
}

async function partReplay(): Promise<void> {
  const small = await replayChild(1);
  const big = await replayChild(10);
  console.log(`replay: 1x ${JSON.stringify(small)} 10x ${JSON.stringify(big)}`);
  add({ part: 'replay', name: `--speed max, 3-hour night, peak ${Math.round(big.peak / 1e6)}M vs ${(small.peak / 1e6).toFixed(1)}M listeners: time`, figure: big.ms, unit: 'ms', baselineName: `${(small.peak / 1e6).toFixed(1)}M crowd`, baseline: small.ms, better: 'lower', detail: { maxRssMiB: big.maxRssMiB, baselineMaxRssMiB: small.maxRssMiB } });
  add({ part: 'replay', name: `--speed max, 3-hour night at ${(small.peak / 1e6).toFixed(1)}M listeners: time (target < 2,000 ms)`, figure: small.ms, unit: 'ms', baselineName: 'target', baseline: 2000, better: 'lower', detail: { maxRssMiB: small.maxRssMiB } });
}

async function scrapeTimes(url: string, n = 20): Promise<{ p50: number; p99: number }> {
  const times: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await (await fetch(`${url}/metrics`)).text();
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  return { p50: round(times[Math.floor(n / 2)]!), p99: round(times[n - 1]!) };
}

async function partMetrics(): Promise<void> {
  const s = await startServer('stampede');
  const swarm = new BenchSwarm();
  try {
    const idle = await scrapeTimes(s.url);
    await swarm.connect('stampede', s.url, METRICS_LISTENERS, s.spaceId);
    await wait(WARMUP_MS);
    const busy = await scrapeTimes(s.url);
    console.log(`metrics scrape: idle ${JSON.stringify(idle)} with ${METRICS_LISTENERS} listeners ${JSON.stringify(busy)}`);
    add({ part: 'metrics', name: `/metrics scrape p50 with ${METRICS_LISTENERS.toLocaleString('en-US')} listeners vs none`, figure: busy.p50, unit: 'ms', baselineName: '0 listeners', baseline: idle.p50, better: 'lower', detail: { p99ms: busy.p99, baselineP99ms: idle.p99 } });
  } finally {
    swarm.close();
    await s.stop();
  }
}

function table(): string {
  const lines = ['| part | measure | Stampede | baseline | ratio |', '|---|---|---|---|---|'];
  for (const e of entries) lines.push(`| ${e.part} | ${e.name} | ${e.figure.toLocaleString('en-US')} ${e.unit} | ${e.baseline.toLocaleString('en-US')} (${e.baselineName}) | ${e.ratio}× (${e.better} is better) |`);
  return lines.join('\n');
}

async function main(): Promise<void> {
  const parts = (process.env.BENCH_PARTS ?? 'fanout,join,replay,metrics').split(',');
  if (parts.includes('fanout')) await partFanout();
  if (parts.includes('join')) await partJoin();
  if (parts.includes('replay')) await partReplay();
  if (parts.includes('metrics')) await partMetrics();
  const dir = process.env.BENCH_OUT ? `${process.env.BENCH_OUT.replace(/\/$/, '')}/` : fileURLToPath(new URL('../../bench/results/', import.meta.url));
  await mkdir(dir, { recursive: true });
  const meta = { date: new Date().toISOString(), parts, node: process.version, cpus: (await import('node:os')).cpus().length, measureMs: MEASURE_MS, fanoutRounds: FANOUT_ROUNDS, httpRounds: HTTP_ROUNDS };
  await writeFile(`${dir}latest.json.tmp`, `${JSON.stringify({ ...meta, entries }, null, 2)}\n`);
  await rename(`${dir}latest.json.tmp`, `${dir}latest.json`);
  const md = `# Benchmark results\n\n${meta.date}, Node ${meta.node}, ${meta.cpus} CPUs, ${MEASURE_MS} ms fan-out windows, medians of ${FANOUT_ROUNDS} fan-out and ${HTTP_ROUNDS} HTTP rounds.\n\n${table()}\n`;
  await writeFile(`${dir}latest.md.tmp`, md);
  await rename(`${dir}latest.md.tmp`, `${dir}latest.md`);
  console.log(`\n${table()}\n\nwritten: ${dir}latest.json, ${dir}latest.md`);
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
