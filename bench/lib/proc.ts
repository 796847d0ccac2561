import { execFileSync, fork, type ChildProcess } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { cpus, setPriority } from 'node:os';
import { fileURLToPath } from 'node:url';
import { getHeapSpaceStatistics } from 'node:v8';

/**
 * Bench processes and the request/answer protocol between the bench and each of them. Every server
 * runs alone on the server CPU set and every client (swarm, scraper, load generator) on the client
 * set (`taskset`), so a server's CPU time is its own and the clients cannot steal its core.
 */
export interface Pinning {
  server: string | null;
  client: string | null;
}

/**
 * BENCH_SERVER_CPUS / BENCH_CLIENT_CPUS, else core 0 for servers and the rest for clients; none on one
 * core, without taskset, or with BENCH_PIN=0 (the shrunk run in the tests, which measures nothing).
 */
export function pinning(env: NodeJS.ProcessEnv): Pinning {
  if (env.BENCH_PIN === '0') return { server: null, client: null };
  let taskset = false;
  try {
    execFileSync('taskset', ['-p', String(process.pid)], { stdio: 'ignore' });
    taskset = true;
  } catch {
    taskset = false;
  }
  const n = cpus().length;
  if (!taskset || n < 2) return { server: null, client: null };
  return { server: env.BENCH_SERVER_CPUS ?? '0', client: env.BENCH_CLIENT_CPUS ?? (n === 2 ? '1' : `1-${n - 1}`) };
}

/** USER_HZ: /proc/<pid>/stat counts CPU time in 10 ms ticks. */
const TICK_MICROS = 10_000;

/**
 * Another process's CPU time so far (user + system, every live thread), in µs; rejects once it has gone.
 * Read in nanoseconds from each thread's /proc/<pid>/task/<tid>/schedstat (time on a CPU), so a short
 * window of a lightly loaded process is not rounded to /proc/<pid>/stat's 10 ms ticks (a 1 ms window
 * read as 0 or 10 ms). A thread that ends inside a window takes its time with it: the processes measured
 * here keep their threads for the run. Without schedstat, the ticks of /proc/<pid>/stat.
 */
export async function processCpuMicros(pid: number): Promise<number> {
  let tids: string[] = [];
  try {
    tids = await readdir(`/proc/${pid}/task`);
  } catch {
    // gone, or no task directory: the stat read below says which
  }
  if (tids.length > 0) {
    const ns = await Promise.all(tids.map((t) => readFile(`/proc/${pid}/task/${t}/schedstat`, 'utf8').then((s) => Number(s.slice(0, s.indexOf(' '))), () => 0)));
    const total = ns.reduce((a, b) => a + b, 0);
    if (total > 0) return total / 1000;
  }
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  // fields after the command (which may hold spaces) start at ") "; utime and stime are fields 14 and 15
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) * TICK_MICROS;
}

/** The CPUs of a taskset list ("0", "1-3", "0,2"). */
function cpusOf(list: string): Set<number> {
  const out = new Set<number>();
  for (const part of list.split(',')) {
    const [a, b] = part.split('-').map(Number) as [number, number | undefined];
    for (let c = a; c <= (b ?? a); c++) out.add(c);
  }
  return out;
}

/**
 * CPU time the kernel counts as busy on a CPU set so far (every process and interrupt on it), in µs,
 * from /proc/stat; null without pinning. Less a server's own CPU time over a point, it is what else ran
 * on the server's core meanwhile.
 */
export async function coreBusyMicros(cpuList: string | null): Promise<number | null> {
  if (!cpuList) return null;
  const want = cpusOf(cpuList);
  let busy = 0;
  for (const line of (await readFile('/proc/stat', 'utf8')).split('\n')) {
    const m = /^cpu(\d+) (.*)$/.exec(line);
    if (!m || !want.has(Number(m[1]))) continue;
    // user nice system idle iowait irq softirq steal: all but idle and iowait are busy
    const f = m[2]!.trim().split(/\s+/).map(Number);
    busy += f[0]! + f[1]! + f[2]! + f[5]! + f[6]! + f[7]!;
  }
  return busy * TICK_MICROS;
}

/** Moves this process onto a CPU set (the bench itself runs autocannon, so it sits with the clients). */
export function pinSelf(cpuList: string | null): void {
  if (cpuList) execFileSync('taskset', ['-a', '-cp', cpuList, String(process.pid)], { stdio: 'ignore' });
}

/**
 * Lowers every thread of process `pid` to nice `niceness` (no rights needed to lower): a load generator
 * that shares a core with a measuring client then yields to it whenever both want the core, so what the
 * client times is the server and not its wait behind the load. Returns false where it could not.
 */
export function yieldCpu(pid: number, niceness = 10): boolean {
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) setPriority(Number(tid), niceness);
    return true;
  } catch {
    return false;
  }
}

export interface Proc {
  readonly pid: number;
  /** Sends a request and resolves with the child's answer to it. */
  call<T = Record<string, unknown>>(type: string, args?: Record<string, unknown>): Promise<T>;
  /** Asks the child to stop, and kills it if it has not exited within 10 s. */
  stop(): Promise<void>;
}

/**
 * Forks `bench/<rel>.js` (compiled) pinned to `cpuList`, with gc exposed for memory readings. An absolute
 * `rel` names a script of another build (BENCH_BEFORE: the same bench server, built from earlier code).
 */
export function spawnProc(rel: string, args: string[], cpuList: string | null, execArgv: string[] = [], profileName = rel.replace(/^.*servers\//, '')): Proc {
  const file = rel.startsWith('/') ? `${rel}.js` : fileURLToPath(new URL(`../${rel}.js`, import.meta.url));
  // BENCH_CPU_PROF=dir: every server writes a V8 CPU profile there when it stops (bench/profile-top.ts reads them)
  const prof = process.env.BENCH_CPU_PROF && rel.includes('servers/') ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}`, `--cpu-prof-name=${profileName}-${Date.now()}.cpuprofile`] : [];
  // BENCH_SERVER_FLAGS: node/V8 flags for the servers (`--perf-basic-prof`, `--trace-deopt`), BENCH_SERVER_FLAGS_FOR limiting them to some (names)
  const only = process.env.BENCH_SERVER_FLAGS_FOR?.split(',');
  const flags = process.env.BENCH_SERVER_FLAGS && rel.includes('servers/') && (!only || only.includes(profileName)) ? process.env.BENCH_SERVER_FLAGS.split(' ').filter(Boolean) : [];
  const argv = ['--expose-gc', ...prof, ...flags, ...execArgv];
  const child: ChildProcess = cpuList
    ? fork(file, args, { execPath: 'taskset', execArgv: ['-c', cpuList, process.execPath, ...argv], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
    : fork(file, args, { execArgv: argv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const waiting = new Map<number, { resolve: (v: never) => void; reject: (e: Error) => void }>();
  let nextId = 1;
  let exited = false;
  child.on('message', (m: { id: number; error?: string }) => {
    const w = waiting.get(m.id);
    if (!w) return;
    waiting.delete(m.id);
    if (m.error) w.reject(new Error(`${rel}: ${m.error}`));
    else w.resolve(m as never);
  });
  const exit = new Promise<void>((resolve) =>
    child.once('exit', (code) => {
      exited = true;
      for (const w of waiting.values()) w.reject(new Error(`${rel} exited with ${code}`));
      waiting.clear();
      resolve();
    }),
  );
  return {
    pid: child.pid ?? 0,
    call: (type, a = {}) =>
      new Promise((resolve, reject) => {
        if (exited) return reject(new Error(`${rel} has exited`));
        const id = nextId++;
        waiting.set(id, { resolve: resolve as (v: never) => void, reject });
        child.send({ ...a, id, type });
      }),
    stop: async () => {
      if (exited) return;
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      child.send({ id: 0, type: 'exit' });
      await exit;
      clearTimeout(timer);
    },
  };
}

type Handler = (msg: Record<string, unknown>) => unknown;

/**
 * The child's side: answers each request with its handler's result. `exit` runs `onExit` (if any)
 * and ends the process. A handler's error is sent back, not thrown.
 */
export function answer(handlers: Record<string, Handler>, onExit?: () => Promise<void>): void {
  // a bench that died must not leave its servers behind
  process.on('disconnect', () => process.exit(0));
  process.on('message', (m: { id: number; type: string } & Record<string, unknown>) => {
    if (m.type === 'exit') {
      // a server whose close waits on a peer gets two seconds, not the parent's ten
      const grace = new Promise((r) => setTimeout(r, 2_000).unref());
      void Promise.race([(onExit ?? (() => Promise.resolve()))(), grace]).finally(() => process.exit(0));
      return;
    }
    const h = handlers[m.type];
    void Promise.resolve()
      .then(() => (h ? h(m) : Promise.reject(new Error(`no handler for ${m.type}`))))
      .then(
        (v) => process.send!({ ...(v as object), id: m.id }),
        (err: unknown) => process.send!({ id: m.id, error: err instanceof Error ? err.message : String(err) }),
      );
  });
}

/** A monotonic clock shared by every process on the machine (CLOCK_MONOTONIC), in ms with ns resolution. */
export const monoMs = (): number => Number(process.hrtime.bigint()) / 1e6;

/** One memory reading of a process, in bytes, after full collections (the children run with --expose-gc). */
export interface MemReading {
  rss: number;
  heapUsed: number;
  external: number;
  arrayBuffers: number;
  /**
   * V8's young generation as committed (new space and its large objects). It grows to 32 MiB under a burst of
   * allocation (a crowd connecting) and V8's memory reducer shrinks it back to 1 MiB once the process has been
   * idle for some seconds; gc() does not shrink it. Read twice, it can differ by up to
   * 31 MiB, or 6.8 KiB per listener at 4,500 — which is what RSS alone measured (issue #15).
   */
  young: number;
}

/** The young generation's committed size, bytes. */
const youngSize = () =>
  getHeapSpaceStatistics()
    .filter((s) => s.space_name === 'new_space' || s.space_name === 'new_large_object_space')
    .reduce((n, s) => n + s.space_size, 0);

let sink: unknown = null;

export function memReading(): MemReading {
  // Touch every page of the young generation (allocate twice its size in short-lived objects), so all of
  // it is resident at every reading and RSS less its committed size is what the rest of the process holds.
  // The burst also keeps the collections below from shrinking it, as V8 does after a quiet spell.
  for (let i = 0, n = (2 * youngSize()) / 256; i < n; i++) sink = new Array(28);
  sink = null;
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  gc?.();
  const m = process.memoryUsage();
  const young = youngSize();
  return { rss: m.rss, heapUsed: m.heapUsed, external: m.external, arrayBuffers: m.arrayBuffers, young };
}

/** RSS after a full GC, so a reading is not a collector's mood (young generation included: see MemReading). */
export function settledRss(): number {
  return memReading().rss;
}
