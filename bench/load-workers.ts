import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Comparison, Entry } from './lib/entries.js';
import { processCpuMicros, spawnProc, type Pinning, type Proc } from './lib/proc.js';
import { shuffled } from './lib/stats.js';
import type { Mark } from './servers/child.js';

/**
 * The load-workers part of `npm run bench` (#14): the same listeners driven by `stampede load --workers
 * 1` and `--workers 2` (the real CLI, as a user runs it) against one Stampede bench server, in a shuffled
 * order each round. Each run holds its listeners for BENCH_WORKERS_SECONDS; once the server counts them
 * all (or half the run has gone), a warm-up and then a window of BENCH_MEASURE_MS is measured:
 * delivered chunks/s (the load's own per-second audio counts, `--out ndjson`, over the window), server
 * CPU per chunk sent in the window (ticks × listeners; the load confirms none missed), the load process's CPU per delivered chunk (every thread, /proc), and the
 * audio p99 of the whole run (the workers' histograms merged). Every figure at 2 workers is a ratio
 * against 1 worker, with its interval.
 */
export interface WorkersBenchConfig {
  workers: number[];
  listeners: number;
  rounds: number;
  seconds: number;
  warmupMs: number;
  measureMs: number;
}

/**
 * Shorter than the one-process parts (6 rounds of 8 s runs with 2 s windows) so the part adds about 2
 * minutes to `npm run bench`; a shorter BENCH_ROUNDS / BENCH_MEASURE_MS shortens it too.
 */
export function workersConfig(env: NodeJS.ProcessEnv): WorkersBenchConfig {
  const num = (k: string, d: number) => Number(env[k] ?? d);
  return {
    workers: (env.BENCH_WORKERS ?? '1,2').split(',').map(Number),
    listeners: num('BENCH_WORKERS_LISTENERS', 1_000),
    rounds: num('BENCH_WORKERS_ROUNDS', Math.min(6, num('BENCH_ROUNDS', 10))),
    seconds: num('BENCH_WORKERS_SECONDS', 8),
    warmupMs: num('BENCH_WARMUP_MS', 500),
    measureMs: num('BENCH_WORKERS_MEASURE_MS', Math.min(2_000, num('BENCH_MEASURE_MS', 3_000))),
  };
}

const BIN = fileURLToPath(new URL('../../bin/stampede.js', import.meta.url));
const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface WorkersRound {
  workers: number;
  round: number;
  position: number;
  /** Listeners the server counted when the window opened. */
  listenersInWindow: number;
  joinsOk: number;
  /** Audio chunks and chunks missed over the whole run. */
  chunks: number;
  gaps: number;
  windowMs: number;
  chunksInWindow: number;
  chunksPerSec: number;
  /** The server's ticks in the window × the listeners it counted: the chunks it sent. */
  sentInWindow: number;
  serverCpuMicrosPerChunk: number;
  loadCpuMicrosPerChunk: number;
  audioP99Ms: number;
}

interface Report {
  seconds: number;
  scenarios: { kinds: { kind: string; ok: number; p99: number | null }[]; ws?: { chunks: number; gaps: number; peakConnected: number } }[];
}

interface Interval {
  type: string;
  t: string;
  elapsedS: number;
  kind: string;
  ok: number;
}

/** The load process's CPU time so far (every thread), in µs; 0 once it has gone. */
const cpuMicros = (pid: number): Promise<number> => processCpuMicros(pid).catch(() => 0);

/**
 * Audio chunks the load received inside [from, to] (epoch ms), from its per-second intervals: each
 * interval's count is taken in proportion to its overlap with the window (the rate inside a second is
 * steady once every listener is connected).
 */
export function chunksWithin(intervals: readonly Interval[], from: number, to: number): number {
  const audio = intervals.filter((i) => i.type === 'interval' && i.kind === 'audio').map((i) => ({ end: Date.parse(i.t), elapsed: i.elapsedS * 1_000, ok: i.ok }));
  audio.sort((a, b) => a.elapsed - b.elapsed);
  let total = 0;
  let prevElapsed = 0;
  for (const a of audio) {
    const start = a.end - (a.elapsed - prevElapsed);
    prevElapsed = a.elapsed;
    const overlap = Math.min(a.end, to) - Math.max(start, from);
    if (overlap > 0 && a.end > start) total += (a.ok * overlap) / (a.end - start);
  }
  return total;
}

async function realListeners(url: string, spaceId: string): Promise<number> {
  const res = await fetch(`${url}/api/v1/spaces/${spaceId}`, { headers: { connection: 'close' } }).catch(() => null);
  const j = (await res?.json().catch(() => null)) as { space?: { listeners?: { real?: number } }; listeners?: { real?: number } } | null;
  return j?.space?.listeners?.real ?? j?.listeners?.real ?? 0;
}

/** When the load's run started (epoch ms), from the first line of its `--out ndjson` file. */
async function firstLine(file: string, deadline: number, exited: Promise<unknown>): Promise<number> {
  let gone = false;
  void exited.then(() => (gone = true));
  while (Date.now() < deadline) {
    const line = (await readFile(file, 'utf8').catch(() => '')).split('\n')[0] ?? '';
    if (line.endsWith('}')) {
      const i = JSON.parse(line) as Interval;
      if (i.type === 'interval') return Date.parse(i.t) - i.elapsedS * 1_000;
    }
    if (gone) break;
    await wait(50);
  }
  throw new Error(`stampede load wrote no interval to ${file}`);
}

/** One run of `stampede load --workers n` (pinned like every client; taskset execs node in place, so the pid is the load's), measured in a window while it holds its listeners. */
async function runOnce(n: number, cfg: WorkersBenchConfig, server: Proc, info: { url: string; spaceId: string }, profile: string, dir: string, pin: string | null, round: number, position: number): Promise<WorkersRound> {
  const out = join(dir, `r${round}-${n}.json`);
  const nd = join(dir, `r${round}-${n}.ndjson`);
  const argv = [BIN, 'load', profile, '--workers', String(n), '--target', info.url, '--space', info.spaceId, '--json', out, '--out', `ndjson=${nd}`, '--quiet'];
  const child = pin ? spawn('taskset', ['-c', pin, process.execPath, ...argv], { stdio: ['ignore', 'ignore', 'pipe'] }) : spawn(process.execPath, argv, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-2_000)));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
  const killer = setTimeout(() => child.kill('SIGKILL'), cfg.seconds * 1_000 + 60_000);
  try {
    // the run starts once the CLI and its workers have loaded (seconds on a busy machine, longer with more
    // workers): its first per-second line says when; the window opens once the server counts every
    // listener, or at the last moment it still fits in the run (flagged)
    const runStart = await firstLine(nd, Date.now() + 60_000, exited);
    const deadline = runStart + cfg.seconds * 1_000 - cfg.warmupMs - cfg.measureMs - 500;
    let listeners = 0;
    while ((listeners = await realListeners(info.url, info.spaceId)) < cfg.listeners && Date.now() < deadline) await wait(100);
    await wait(cfg.warmupMs);
    const [m0, l0] = await Promise.all([server.call<Mark>('mark'), cpuMicros(child.pid!)]);
    const from = Date.now();
    await wait(cfg.measureMs);
    const [m1, l1] = await Promise.all([server.call<Mark>('mark'), cpuMicros(child.pid!)]);
    const to = Date.now();
    const code = await exited;
    // the profile has no threshold, so anything but 0 is an error
    if (code !== 0) throw new Error(`stampede load --workers ${n} exited with ${code}: ${stderr.trim()}`);
    const report = JSON.parse(await readFile(out, 'utf8')) as Report;
    const intervals = (await readFile(nd, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as Interval);
    const s = report.scenarios[0]!;
    const chunks = chunksWithin(intervals, from, to);
    // per chunk: the chunks the server sent in the window (its ticks × the listeners it counted), which the
    // load confirms it received (no gaps); the load's own per-second counts come from each worker's report,
    // in its own phase, so a window's share of them is exact only with one worker
    const per = Math.max(1, m1.ticks * listeners);
    return {
      workers: n,
      round,
      position,
      listenersInWindow: listeners,
      joinsOk: s.kinds.find((k) => k.kind === 'join')?.ok ?? 0,
      chunks: s.ws?.chunks ?? 0,
      gaps: s.ws?.gaps ?? 0,
      windowMs: to - from,
      chunksInWindow: Math.round(chunks),
      chunksPerSec: chunks / ((to - from) / 1_000),
      sentInWindow: m1.ticks * listeners,
      serverCpuMicrosPerChunk: (m1.userMicros + m1.systemMicros - m0.userMicros - m0.systemMicros) / per,
      loadCpuMicrosPerChunk: (l1 - l0) / per,
      audioP99Ms: s.kinds.find((k) => k.kind === 'audio')?.p99 ?? 0,
    };
  } finally {
    clearTimeout(killer);
    child.kill('SIGKILL');
  }
}

export async function partWorkers(o: { env: NodeJS.ProcessEnv; pin: Pinning; random: () => number; log: (s: string) => void; compare: (c: Comparison) => Entry; raw: Record<string, unknown> }): Promise<void> {
  const cfg = workersConfig(o.env);
  const { log } = o;
  log(`load workers: stampede load --workers ${cfg.workers.join(' / ')}, ${cfg.listeners} listeners for ${cfg.seconds} s against one Stampede`);
  const dir = await mkdtemp(join(tmpdir(), 'stampede-bench-workers-'));
  const profile = join(dir, 'listeners.json');
  // a closed model: every listener joins in the first second and listens to the end; no reactions, no reconnects
  await writeFile(profile, JSON.stringify({ name: 'bench-listeners', kind: 'ws', executor: 'constant-vus', vus: cfg.listeners, duration: cfg.seconds, reconnect: 'never' }));
  const server = spawnProc('servers/stampede', [], o.pin.server);
  const rounds: WorkersRound[] = [];
  try {
    const info = await server.call<{ port: number; spaceId: string }>('info');
    const target = { url: `http://127.0.0.1:${info.port}`, spaceId: info.spaceId };
    // chunks stamped on the wall clock, which the load's listeners measure their delay with
    await server.call('audio', { on: true, wallClock: true });
    for (let r = 0; r < cfg.rounds; r++) {
      const order = shuffled(cfg.workers, o.random);
      for (let i = 0; i < order.length; i++) rounds.push(await runOnce(order[i]!, cfg, server, target, profile, dir, o.pin.client, r, i));
      const last = rounds.slice(-order.length).sort((a, b) => a.workers - b.workers);
      log(`  round ${r + 1}/${cfg.rounds}: ${last.map((x) => `${x.workers}w ${x.listenersInWindow} listeners ${Math.round(x.chunksPerSec)} chunks/s, server ${x.serverCpuMicrosPerChunk.toFixed(1)} µs/chunk, load ${x.loadCpuMicrosPerChunk.toFixed(1)} µs/chunk, p99 ${x.audioP99Ms} ms`).join('; ')}`);
    }
  } finally {
    await server.stop();
    await rm(dir, { recursive: true, force: true });
  }
  o.raw.workers = { config: cfg, rounds };
  const of = (n: number, k: keyof WorkersRound) => rounds.filter((r) => r.workers === n).map((r) => r[k]);
  /** A cell is flagged when a window opened before every listener was connected, or a run missed more than 1% of its chunks. */
  const flags = (n: number): string[] => {
    const rs = rounds.filter((r) => r.workers === n);
    const out: string[] = [];
    const short = rs.filter((r) => r.listenersInWindow < cfg.listeners).length;
    if (short) out.push(`${n} workers: ${short} of ${rs.length} windows opened with fewer than ${cfg.listeners} listeners connected`);
    const missed = rs.filter((r) => r.gaps > 0.01 * r.chunks).length;
    if (missed) out.push(`${n} workers: ${missed} of ${rs.length} runs missed more than 1% of their chunks`);
    return out;
  };
  const base = cfg.workers[0]!;
  const L = cfg.listeners.toLocaleString('en-US');
  for (const n of cfg.workers.slice(1)) {
    const excluded = [...flags(n), ...flags(base)].join('; ') || undefined;
    const cmp = (name: string, unit: string, better: 'higher' | 'lower', k: keyof WorkersRound) =>
      o.compare({ part: 'workers', name: `stampede load --workers ${n}: ${name}, ${L} listeners`, unit, better, a: of(n, k), baselineName: `--workers ${base}`, b: of(base, k), excluded });
    cmp('delivered chunks/s (the load\'s per-second counts)', 'chunks/s', 'higher', 'chunksPerSec');
    cmp('server CPU per chunk sent', 'µs', 'lower', 'serverCpuMicrosPerChunk');
    cmp('load process CPU per chunk received (every thread)', 'µs', 'lower', 'loadCpuMicrosPerChunk');
    cmp('audio p99 of the whole run, histograms merged', 'ms', 'lower', 'audioP99Ms');
  }
}
