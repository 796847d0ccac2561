import { mkdir } from 'node:fs/promises';
import { Agent, request } from 'node:http';
import { cpus, loadavg } from 'node:os';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SERVER_DEFAULTS } from '../src/config.js';
import { createRng } from '../src/sim/rng.js';
import { writeAtomic } from '../src/write-atomic.js';
import { coreBusyMicros, pinning, pinSelf, spawnProc, yieldCpu, type MemReading, type Proc } from './lib/proc.js';
import { overloadSvg, renderMarkdown } from './lib/report.js';
import { Ledger, type Comparison } from './lib/entries.js';
import { quantile as quantileOf } from 'simple-statistics';
import { estimate, palindrome, ratio, shuffled, type Estimate, type Window } from './lib/stats.js';
import { CHUNK_INTERVAL_MS, type Mark } from './servers/child.js';
import { partCluster } from './cluster.js';
import { partWorkers } from './load-workers.js';
import type { Flavor } from './swarm.js';

/**
 * `npm run bench`: Stampede against baselines and floors measured in the same run, on the same
 * machine, with the same clients. Servers run alone on the server CPU set, clients on the client set.
 * Every figure is the median of ≥ 10 rounds taken in a shuffled order, with a bootstrap 95% interval;
 * every ratio has its own interval, and cells where a contestant did not connect every listener or
 * missed its cadence are flagged and left out of ratios. Loopback only; every part is bounded.
 * Writes bench/results/latest.json (every round), latest.md and overload.svg.
 */
const env = process.env;
const num = (k: string, d: number) => Number(env[k] ?? d);
const CFG = {
  parts: (env.BENCH_PARTS ?? 'fanout,join,overload,metrics,replay,cluster,workers').split(','),
  sizes: (env.BENCH_SIZES ?? '1000,2000,5000').split(',').map(Number),
  rounds: num('BENCH_ROUNDS', 10),
  warmupMs: num('BENCH_WARMUP_MS', 500),
  /** Fan-out: measured time per contestant per round, in two windows of half of it (one each side of the round's palindrome). */
  measureMs: num('BENCH_MEASURE_MS', 3_000),
  /** Fan-out: server processes per contestant and size (each with its own listeners); round r is served by process r mod this. */
  procs: Math.max(1, num('BENCH_PROCS', 2)),
  connectBudgetMs: num('BENCH_CONNECT_BUDGET_MS', 90_000),
  httpMs: num('BENCH_HTTP_MS', 2_000),
  httpConnections: num('BENCH_HTTP_CONNECTIONS', 32),
  overloadMs: num('BENCH_OVERLOAD_MS', 3_000),
  /** Rounds per point at the join budget, the series the 10× target is judged by (≥ 10 per cell, as every other part). */
  overloadRounds: num('BENCH_OVERLOAD_ROUNDS', 10),
  /** Rounds per point at the HTTP maximum (out of reach on one core, so 2 keep the part short). */
  overloadMaxRounds: num('BENCH_OVERLOAD_MAX_ROUNDS', 2),
  overloadFactors: (env.BENCH_OVERLOAD_FACTORS ?? '0.5,1,2,5,10').split(',').map(Number),
  /** The join capacity the overload part scales from and sets admission to; 0 measures it (the join part's figure, or three closed rounds). */
  overloadCapacity: num('BENCH_OVERLOAD_CAPACITY', 0),
  /**
   * Which definitions of capacity the overload part runs: `budget` (the join admission budget an operator
   * sets, BENCH_OVERLOAD_BUDGET) and `max` (the server's own closed-loop join rate, its HTTP maximum).
   */
  overloadDefs: (env.BENCH_OVERLOAD_DEFS ?? 'budget,max').split(','),
  /** The join admission budget, joins/s: by default the server's own default join token-bucket rate. */
  overloadBudget: num('BENCH_OVERLOAD_BUDGET', SERVER_DEFAULTS.joinRatePerSecond),
  /** 1: the overload part also runs Stampede with the token bucket alone (shedding off), to show what shedding costs and buys. */
  overloadNoShed: env.BENCH_OVERLOAD_NOSHED === '1',
  /** That contestant's token bucket as a share of the capacity (1: the capacity). */
  overloadNoShedShare: num('BENCH_OVERLOAD_NOSHED_SHARE', 1),
  /** JSON merged into this build's Stampede's settings in the overload part only (not BENCH_BEFORE's): a setting tried against the build before it, paired. */
  overloadStampede: JSON.parse(env.BENCH_OVERLOAD_STAMPEDE ?? '{}') as Record<string, unknown>,
  metricsListeners: num('BENCH_METRICS_LISTENERS', 2_000),
  /**
   * Rounds of the /metrics part (its own: a round of 8 short windows takes ~2 s, and a window's figure moves
   * with where it falls in the 100 ms chunk cadence, so more rounds, not longer windows, narrow its interval).
   */
  metricsRounds: Math.max(1, num('BENCH_METRICS_ROUNDS', 20)),
  /** Scrapes per case in all, over the rounds' two windows each (400: 10 per window, as with 200 over 10 rounds until session 13). */
  metricsSamples: num('BENCH_METRICS_SAMPLES', 400),
  /** An experiment: the /metrics scraper pauses a uniformly random 0 to this many ms before each scrape (0, the default: back to back). */
  metricsGapMs: num('BENCH_METRICS_GAP_MS', 0),
  replayRounds: num('BENCH_REPLAY_ROUNDS', 5),
  seed: num('BENCH_SEED', 1),
  /** Memory readings of each fan-out server before and after its crowd connects (the memory figure's interval is over them), and the gap between them. */
  memReadings: Math.max(1, num('BENCH_MEM_READINGS', 3)),
  memGapMs: num('BENCH_MEM_GAP_MS', 500),
  /** Chunks per write of the coalesced operating point (Stampede with `fanoutCoalesceChunks`); 0 or 1 leaves it out. */
  coalesce: num('BENCH_COALESCE', 4),
  /** Its bound on how long a held chunk waits (`fanoutCoalesceMaxHoldMs`), ms. */
  coalesceHoldMs: num('BENCH_COALESCE_HOLD_MS', 250),
  /**
   * BENCH_FANOUT_PROBES=1: in every measured fan-out window of a Stampede contestant, the server's event-loop
   * delay (p99, max) and joins and /metrics scrapes timed from the bench's own process (one every 20–40 ms,
   * every fifth a scrape), the latency the fan-out's pacing bounds. Off by default: the probes cost the server
   * some CPU in the window (the same for every Stampede contestant, none for the others).
   */
  probes: env.BENCH_FANOUT_PROBES === '1',
  /** Fan-out contestants to run (Stampede, and BENCH_BEFORE's when given, always run); default all. */
  contestants: env.BENCH_CONTESTANTS ? env.BENCH_CONTESTANTS.split(',') : null,
  /** A `dist` directory built from earlier code: its Stampede runs beside this one, for a before/after ratio in one run. */
  before: env.BENCH_BEFORE ? resolve(env.BENCH_BEFORE) : null,
};
const PIN = pinning(env);
const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));
const rng = createRng(CFG.seed).fork('order');
/** Where in the chunk cadence an on-air /metrics window starts, and the scraper's pauses (their own streams, so the parts' orders stay as they were). */
const phaseRng = createRng(CFG.seed).fork('metrics-phase');
const gapRng = createRng(CFG.seed).fork('metrics-gaps');
const probeRng = createRng(CFG.seed).fork('fanout-probes');
const started = Date.now();
const log = (s: string) => console.log(s.startsWith('  ') || !s ? s : `[${((Date.now() - started) / 1000).toFixed(0)} s] ${s}`);

const ledger = new Ledger(CFG.seed, log);
const compare = ledger.compare.bind(ledger);
const against = ledger.against.bind(ledger);
const entries = ledger.entries;
const raw: Record<string, unknown> = {};

// ───────────────────────────── fan-out ─────────────────────────────

interface Contestant {
  name: string;
  label: string;
  /** The server script under dist/bench/servers, or an absolute path to another build's. */
  server: string;
  flavor: Flavor;
  args?: string[];
  /** A median chunk later than this after its due time is a server behind its cadence (a coalescing server holds chunks on purpose). */
  cadenceMs?: number;
  /** Runs only when BENCH_CONTESTANTS names it. */
  experiment?: boolean;
}

/** The same bench server script from the BENCH_BEFORE build, when one is given. */
const beforeServer = (name: string) => `${CFG.before}/bench/servers/${name}`;
const BEFORE_LABEL = 'Stampede before (BENCH_BEFORE)';

const COALESCED = `${CFG.coalesce} chunks per write, held ≤ ${CFG.coalesceHoldMs} ms`;

const ALL_FANOUT: Contestant[] = [
  { name: 'stampede', label: 'Stampede', server: 'servers/stampede', flavor: 'stampede' },
  { name: 'bare-ws', label: 'bare ws (send per client)', server: 'servers/bare-ws', flavor: 'ws' },
  { name: 'ws-frame-once', label: 'ws, frame built once (floor 1)', server: 'servers/ws-frame-once', flavor: 'ws' },
  { name: 'net-floor', label: 'raw node:net, one pre-built frame per listener (floor 2)', server: 'servers/net-floor', flavor: 'net' },
  { name: 'socketio', label: 'Socket.IO', server: 'servers/socketio', flavor: 'socketio' },
  ...(CFG.coalesce > 1
    ? [{ name: 'stampede-coalesce', label: `Stampede, ${COALESCED}`, server: 'servers/stampede', flavor: 'stampede', args: [JSON.stringify({ fanoutCoalesceChunks: CFG.coalesce, fanoutCoalesceMaxHoldMs: CFG.coalesceHoldMs })], cadenceMs: CFG.coalesce * CHUNK_INTERVAL_MS } satisfies Contestant]
    : []),
  ...(CFG.before ? [{ name: 'stampede-before', label: BEFORE_LABEL, server: beforeServer('stampede'), flavor: 'stampede' } satisfies Contestant] : []),
  // an experiment, run only when named in BENCH_CONTESTANTS (docs/bench.md, Fan-out: the shared write call site)
  { name: 'net-floor-mixed', label: 'raw node:net floor, plus a ws Receiver and an fs.WriteStream written per chunk', server: 'servers/net-floor-mixed', flavor: 'net', experiment: true },
  // an experiment, run only when named in BENCH_CONTESTANTS (docs/bench.md, Fan-out: memory layout)
  { name: 'net-floor-spread', label: 'raw node:net floor, plus ~2.6 KiB of JS objects kept per listener', server: 'servers/net-floor-spread', flavor: 'net', experiment: true },
  // experiments, run only when named in BENCH_CONTESTANTS (docs/bench.md, Fan-out: why the gap grows at 5,000)
  { name: 'stampede-net', label: "Stampede, its listeners read by the floor's raw TCP reader", server: 'servers/stampede', flavor: 'stampede-net', experiment: true },
  { name: 'stampede-unpaced', label: 'Stampede, fan-out unpaced (one turn per chunk)', server: 'servers/stampede', flavor: 'stampede', args: [JSON.stringify({ fanoutTurnMs: 100, fanoutWritesPerTurn: 1_000_000 })], experiment: true },
  // experiments, run only when named in BENCH_CONTESTANTS (docs/bench.md, Fan-out: the pacing turn's length; with BENCH_FANOUT_PROBES=1)
  { name: 'stampede-turn8', label: 'Stampede, fan-out turns of 8 ms', server: 'servers/stampede', flavor: 'stampede', args: [JSON.stringify({ fanoutTurnMs: 8 })], experiment: true },
  { name: 'stampede-turn16', label: 'Stampede, fan-out turns of 16 ms', server: 'servers/stampede', flavor: 'stampede', args: [JSON.stringify({ fanoutTurnMs: 16 })], experiment: true },
  // experiments, run only when named in BENCH_CONTESTANTS (docs/bench.md, Fan-out: below Node's stream layer)
  { name: 'stampede-socket-write', label: 'Stampede, every fan-out write through socket.write', server: 'servers/stampede', flavor: 'stampede', args: [JSON.stringify({ fanoutDirectWrite: false })], experiment: true },
  { name: 'net-floor-direct', label: "raw node:net floor, each frame written straight to the socket's libuv handle", server: 'servers/net-floor-direct', flavor: 'net', experiment: true },
];
// Stampede always runs, and so does the BENCH_BEFORE build when one is given
const FANOUT = ALL_FANOUT.filter((c) => c.name === 'stampede' || c.name === 'stampede-before' || (c.experiment ? CFG.contestants?.includes(c.name) : !CFG.contestants || CFG.contestants.includes(c.name)));

/** One measuring window of one server process: audio on for BENCH_WARMUP_MS, then BENCH_MEASURE_MS / 2 measured. */
interface FanoutWindow {
  /** Its place in the round's palindromic order (A B C C B A: a contestant's two places add up to 2 × contestants − 1). */
  position: number;
  connected: number;
  received: number;
  expected: number;
  seconds: number;
  userMicros: number;
  systemMicros: number;
  chunksPerCpuSec: number;
  p50Ms: number;
  p99Ms: number;
  maxLateMs: number;
  /** With BENCH_FANOUT_PROBES: the server's event-loop delay in the window (p99, max; ms), and every probe's time (ms). */
  loop?: { p99Ms: number; maxMs: number };
  probes?: { joinMs: number[]; metricsMs: number[]; failed: number };
}

/** A contestant's round: its two windows (one each side of the palindrome) on one of its processes, as one figure. */
interface FanoutRound {
  round: number;
  /** Which of the contestant's BENCH_PROCS server processes served the round (round mod BENCH_PROCS, the same for every contestant). */
  process: number;
  connected: number;
  received: number;
  expected: number;
  deliveredRatio: number;
  seconds: number;
  userMicros: number;
  systemMicros: number;
  /** Chunks over CPU of both windows together (and so for the per-chunk figures). */
  chunksPerCpuSec: number;
  cpuMicrosPerChunk: number;
  userMicrosPerChunk: number;
  systemMicrosPerChunk: number;
  /** The mean of the two windows' percentiles. */
  p50Ms: number;
  p99Ms: number;
  maxLateMs: number;
  /** With BENCH_FANOUT_PROBES (NaN without): the loop delay's p99 (mean of the windows) and max; the probes of both windows pooled. */
  loopP99Ms: number;
  loopMaxMs: number;
  joinP50Ms: number;
  joinP99Ms: number;
  metricsP50Ms: number;
  metricsMaxMs: number;
  windows: FanoutWindow[];
}

/** One server process of a contestant at a size, with its own client swarm. */
interface FanoutProc {
  connected: number;
  connectMs: number;
  serverRssPerListenerKiB: number;
  swarmRssPerListenerKiB: number;
}

interface FanoutCell {
  contestant: string;
  listeners: number;
  /** The fewest listeners any of its processes connected. */
  connected: number;
  /** The longest connect of its processes. */
  connectMs: number;
  /** The median of the readings of serverMemPerListenerKiB.rssLessYoung (the figure held to the target). */
  serverRssPerListenerKiB: number;
  swarmRssPerListenerKiB: number;
  /** Per listener that connected after the first reading, KiB: one value per reading (BENCH_MEM_READINGS) of every process. */
  serverMemPerListenerKiB: Record<keyof MemReading | 'rssLessYoung', number[]>;
  flags: string[];
  /** Each server process (BENCH_PROCS of them), and the spread between them: each one's median chunks per CPU-second as a ratio to the first's, with its interval. */
  processes: (FanoutProc & { chunksPerCpuSec: number; vsFirst: { ratio: number; ci: [number, number] } | null })[];
  rounds: FanoutRound[];
}

interface Up {
  server: Proc;
  swarm: Proc;
  url: string;
  spaceId?: string;
  proc: FanoutProc;
  mem: FanoutCell['serverMemPerListenerKiB'];
}

interface Live {
  c: Contestant;
  procs: Up[];
  cell: FanoutCell;
}

interface Started {
  server: Proc;
  swarm: Proc;
  info: { port: number; spaceId?: string };
}

async function start(c: Contestant): Promise<Started> {
  const server = spawnProc(c.server, c.args ?? [], PIN.server, [], c.name);
  const swarm = spawnProc('swarm', [], PIN.client);
  const [info] = await Promise.all([server.call<{ port: number; spaceId?: string }>('info'), swarm.call('mem')]);
  return { server, swarm, info };
}

/** Connects one started server process's listeners (one process at a time, so connects do not compete) and reads memory. */
async function setUp(c: Contestant, n: number, { server, swarm, info }: Started): Promise<Up> {
  const url = `http://127.0.0.1:${info.port}`;
  // a first tenth of the listeners loads every code path on both sides; memory is read after it, so a
  // figure per listener is what each further listener costs, not module loading
  const first = Math.max(1, Math.floor(n / 10));
  const t0 = Date.now();
  const a = await swarm.call<{ connected: number }>('connect', { flavor: c.flavor, url, n: first, spaceId: info.spaceId, budgetMs: CFG.connectBudgetMs });
  // several readings only where the figure is reported (the largest size)
  const readings = n === Math.max(...CFG.sizes) ? CFG.memReadings : 1;
  const [sMem0, wRss0] = await Promise.all([readMem(server, readings), swarm.call<{ rss: number }>('mem')]);
  const b = await swarm.call<{ connected: number }>('connect', { flavor: c.flavor, url, n: n - first, spaceId: info.spaceId, budgetMs: Math.max(1_000, CFG.connectBudgetMs - (Date.now() - t0)) });
  const connected = a.connected + b.connected;
  const connectMs = Date.now() - t0;
  await wait(200);
  const [sMem1, wRss1] = await Promise.all([readMem(server, readings), swarm.call<{ rss: number }>('mem')]);
  const per = (x: number, y: number) => Math.round(((y - x) / Math.max(1, b.connected) / 1024) * 100) / 100;
  // reading i after the crowd against reading i before it; an earlier build's server (BENCH_BEFORE) may give RSS alone: NaN
  const field = (k: keyof MemReading | 'rssLessYoung') => sMem1.map((r1, i) => per(value(sMem0[i]!, k), value(r1, k)));
  const mem = { rss: field('rss'), rssLessYoung: field('rssLessYoung'), heapUsed: field('heapUsed'), external: field('external'), arrayBuffers: field('arrayBuffers'), young: field('young') };
  const med = (xs: number[]) => estimate(xs).median;
  log(`  ${c.name}: ${connected}/${n} connected in ${connectMs} ms; server KiB/listener: RSS less young generation ${med(mem.rssLessYoung)} (RSS ${med(mem.rss)}, young generation ${med(mem.young)}, heap used ${med(mem.heapUsed)}, external ${med(mem.external)}); swarm +${per(wRss0.rss, wRss1.rss)} KiB/listener`);
  return { server, swarm, url, ...(info.spaceId ? { spaceId: info.spaceId } : {}), mem, proc: { connected, connectMs, serverRssPerListenerKiB: med(mem.rssLessYoung), swarmRssPerListenerKiB: per(wRss0.rss, wRss1.rss) } };
}

/** A contestant's cell from its processes: memory readings of every process pooled, the fewest connected. */
function fanoutCell(c: Contestant, n: number, procs: Up[]): FanoutCell {
  const mem = Object.fromEntries(Object.keys(procs[0]!.mem).map((k) => [k, procs.flatMap((p) => p.mem[k as keyof Up['mem']])])) as Up['mem'];
  const connected = Math.min(...procs.map((p) => p.proc.connected));
  const flags = connected < n ? [`connected ${connected} of ${n} listeners within ${CFG.connectBudgetMs / 1000} s`] : [];
  const med = (xs: number[]) => estimate(xs).median;
  return {
    contestant: c.name,
    listeners: n,
    connected,
    connectMs: Math.max(...procs.map((p) => p.proc.connectMs)),
    serverRssPerListenerKiB: med(mem.rssLessYoung),
    swarmRssPerListenerKiB: med(procs.map((p) => p.proc.swarmRssPerListenerKiB)),
    serverMemPerListenerKiB: mem,
    flags,
    processes: [],
    rounds: [],
  };
}

/** A server's memory, read BENCH_MEM_READINGS times BENCH_MEM_GAP_MS apart (each after full collections). */
async function readMem(server: Proc, readings: number): Promise<MemReading[]> {
  const rs: MemReading[] = [];
  for (let i = 0; i < readings; i++) {
    if (i) await wait(CFG.memGapMs);
    rs.push(await server.call<MemReading>('mem'));
  }
  return rs;
}

/** RSS less the young generation: what the process holds, without the allocation buffer V8 sizes to the last burst. */
const value = (r: MemReading, k: keyof MemReading | 'rssLessYoung') => (k === 'rssLessYoung' ? r.rss - r.young : r[k]);

/**
 * BENCH_FANOUT_PROBES: joins and /metrics scrapes sent to a Stampede server from the bench's own process while
 * its audio flows, one at a time over one kept-alive connection, a random 20–40 ms apart (so they land
 * anywhere in the chunk cadence), every fifth a scrape; each timed from its send to its last byte.
 */
function startProbes(url: string, spaceId: string): { stop: () => Promise<NonNullable<FanoutWindow['probes']>> } {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const got: NonNullable<FanoutWindow['probes']> = { joinMs: [], metricsMs: [], failed: 0 };
  let stopping = false;
  const one = (method: 'GET' | 'POST', path: string, into: number[]) =>
    new Promise<void>((done) => {
      const t0 = performance.now();
      const req = request(`${url}${path}`, { method, agent }, (res) => {
        res.resume();
        res.on('end', () => {
          if (res.statusCode === 200) into.push(performance.now() - t0);
          else got.failed++;
          done();
        });
      });
      req.on('error', () => {
        got.failed++;
        done();
      });
      req.end();
    });
  const running = (async () => {
    for (let k = 0; !stopping; k++) {
      await wait(20 + probeRng.next() * 20);
      if (stopping) break;
      await (k % 5 === 4 ? one('GET', '/metrics', got.metricsMs) : one('POST', `/api/v1/spaces/${spaceId}/join`, got.joinMs));
    }
  })();
  return {
    stop: async () => {
      stopping = true;
      await running;
      agent.destroy();
      return got;
    },
  };
}

/** One measuring window of one server process: audio on, warm-up, half of BENCH_MEASURE_MS, audio off. */
async function measure(u: Up, position: number): Promise<FanoutWindow> {
  await u.server.call('audio', { on: true });
  await wait(CFG.warmupMs);
  const probing = CFG.probes && u.spaceId !== undefined;
  // the first call starts the server's loop-delay histogram; each call reads and resets it
  if (probing) await u.server.call('loop');
  const [m0] = await Promise.all([u.server.call<Mark>('mark'), u.swarm.call('start')]);
  const probes = probing ? startProbes(u.url, u.spaceId!) : null;
  const t0 = performance.now();
  await wait(CFG.measureMs / 2);
  const [m1, s, loop] = await Promise.all([
    u.server.call<Mark>('mark'),
    u.swarm.call<{ received: number; p50Ms: number; p99Ms: number }>('stop'),
    probing ? u.server.call<{ p99Ms: number; maxMs: number }>('loop') : null,
  ]);
  const seconds = (performance.now() - t0) / 1000;
  const probed = probes ? await probes.stop() : null;
  await u.server.call('audio', { on: false });
  const userMicros = m1.userMicros - m0.userMicros;
  const systemMicros = m1.systemMicros - m0.systemMicros;
  const connected = u.proc.connected;
  return {
    position,
    connected,
    received: s.received,
    expected: connected * m1.ticks,
    seconds,
    userMicros,
    systemMicros,
    chunksPerCpuSec: s.received / ((userMicros + systemMicros) / 1e6),
    p50Ms: s.p50Ms,
    p99Ms: s.p99Ms,
    maxLateMs: m1.maxLateMs,
    ...(loop ? { loop } : {}),
    ...(probed ? { probes: probed } : {}),
  };
}

/** The q-quantile of `xs` (NaN for none). */
const quantile = (xs: number[], q: number) => (xs.length ? quantileOf(xs, q) : NaN);

/** A contestant's two windows of a round as one round: chunks over CPU of both, the mean of their percentiles. */
function fanoutRound(round: number, process: number, ws: Window<FanoutWindow>[]): FanoutRound {
  type Num = { [K in keyof FanoutWindow]-?: FanoutWindow[K] extends number ? K : never }[keyof FanoutWindow];
  const sum = (k: Num) => ws.reduce((a, x) => a + x.w[k], 0);
  const mean = (k: Num) => sum(k) / ws.length;
  const [received, expected, user, system] = [sum('received'), sum('expected'), sum('userMicros'), sum('systemMicros')];
  const chunks = Math.max(1, received);
  const joins = ws.flatMap((x) => x.w.probes?.joinMs ?? []);
  const scrapes = ws.flatMap((x) => x.w.probes?.metricsMs ?? []);
  return {
    round,
    process,
    connected: ws[0]!.w.connected,
    received,
    expected,
    deliveredRatio: expected ? received / expected : 0,
    seconds: sum('seconds'),
    userMicros: user,
    systemMicros: system,
    chunksPerCpuSec: received / ((user + system) / 1e6),
    cpuMicrosPerChunk: (user + system) / chunks,
    userMicrosPerChunk: user / chunks,
    systemMicrosPerChunk: system / chunks,
    p50Ms: mean('p50Ms'),
    p99Ms: mean('p99Ms'),
    maxLateMs: Math.max(...ws.map((x) => x.w.maxLateMs)),
    loopP99Ms: ws.every((x) => x.w.loop) ? ws.reduce((a, x) => a + x.w.loop!.p99Ms, 0) / ws.length : NaN,
    loopMaxMs: ws.every((x) => x.w.loop) ? Math.max(...ws.map((x) => x.w.loop!.maxMs)) : NaN,
    joinP50Ms: quantile(joins, 0.5),
    joinP99Ms: quantile(joins, 0.99),
    metricsP50Ms: quantile(scrapes, 0.5),
    metricsMaxMs: scrapes.length ? Math.max(...scrapes) : NaN,
    windows: ws.map((x) => x.w),
  };
}

/**
 * Process p's rounds against the first process's, or null where there is no ratio to take: p is the first,
 * either has no rounds, or the ratio is not finite (a starved shrunk run where the first delivered nothing;
 * JSON would write Infinity as null beside a ratio that claims to be one).
 */
function vsFirst(p: number, mine: readonly number[], first: readonly number[]): { ratio: number; ci: [number, number] } | null {
  if (!p || !mine.length || !first.length) return null;
  const r = ratio(mine, first, CFG.seed);
  return [r.median, r.lo, r.hi].every(Number.isFinite) ? { ratio: r.median, ci: [r.lo, r.hi] } : null;
}

/** Each process's median chunks per CPU-second, and its ratio to the first process's (rounds of neighbouring rounds side by side). */
function processSpread(cell: FanoutCell, procs: Up[]): FanoutCell['processes'] {
  const of = (p: number) => cell.rounds.filter((r) => r.process === p).map((r) => r.chunksPerCpuSec);
  return procs.map((u, p) => ({ ...u.proc, chunksPerCpuSec: estimate(of(p)).median, vsFirst: vsFirst(p, of(p), of(0)) }));
}

type RoundFigure = { [K in keyof FanoutRound]: FanoutRound[K] extends number ? K : never }[keyof FanoutRound];
const col = (rs: FanoutRound[], k: RoundFigure) => rs.map((r) => r[k]);

async function partFanout(): Promise<void> {
  const cells: FanoutCell[] = [];
  for (const n of CFG.sizes) {
    log(`fan-out, ${n} listeners: connecting every contestant, ${CFG.procs} server process${CFG.procs === 1 ? '' : 'es'} each`);
    const live: Live[] = [];
    const all: Started[] = [];
    try {
      // processes start together (their start-up is not measured); listeners connect one process at a time
      const started = await Promise.allSettled(FANOUT.flatMap((c) => Array.from({ length: CFG.procs }, () => start(c))));
      all.push(...started.flatMap((st) => (st.status === 'fulfilled' ? [st.value] : [])));
      if (all.length < started.length) throw new Error('a fan-out contestant did not start');
      for (const [i, c] of FANOUT.entries()) {
        const procs: Up[] = [];
        for (let p = 0; p < CFG.procs; p++) procs.push(await setUp(c, n, all[i * CFG.procs + p]!));
        live.push({ c, procs, cell: fanoutCell(c, n, procs) });
      }
      // every process stays connected; round r is served by process r mod BENCH_PROCS of every contestant, and
      // measures the contestants one at a time in a fresh shuffled order and then in its reverse (A B C C B A),
      // so each contestant's two windows centre on the same moment and a linear drift of the machine cancels
      for (let r = 0; r < CFG.rounds; r++) {
        const p = r % CFG.procs;
        const got = await palindrome(live, rng.next, (l, position) => measure(l.procs[p]!, position));
        for (const l of live) l.cell.rounds.push(fanoutRound(r, p, got.get(l)!));
        log(`  round ${r + 1}/${CFG.rounds} (process ${p + 1}): ${live.map((l) => `${l.c.name} ${Math.round(l.cell.rounds.at(-1)!.chunksPerCpuSec)}`).join(', ')} chunks/cpu-s`);
      }
    } finally {
      // clients first, so no server waits out its drain deadline for listeners that are going anyway
      await Promise.all(all.map((u) => u.swarm.stop()));
      await Promise.all(all.map((u) => u.server.stop()));
    }
    for (const l of live) {
      const delivered = estimate(col(l.cell.rounds, 'deliveredRatio'));
      if (delivered.median < 0.97) l.cell.flags.push(`missed cadence: delivered ${(delivered.median * 100).toFixed(1)}% of the chunks due`);
      // one late tick is the machine's doing; a median chunk arriving a whole interval after it was due is a server behind
      const p50 = estimate(col(l.cell.rounds, 'p50Ms'));
      if (p50.median > (l.c.cadenceMs ?? CHUNK_INTERVAL_MS)) l.cell.flags.push(`missed cadence: the median chunk arrived ${p50.median.toFixed(0)} ms after it was due`);
      l.cell.processes = processSpread(l.cell, l.procs);
      if (CFG.procs > 1) log(`  ${l.c.name}: chunks/cpu-s by process ${l.cell.processes.map((p) => `${Math.round(p.chunksPerCpuSec)}${p.vsFirst ? ` (${p.vsFirst.ratio.toFixed(3)}× [${p.vsFirst.ci.map((x) => x.toFixed(3)).join(', ')}])` : ''}`).join(', ')}`);
      cells.push(l.cell);
    }
    // every fan-out ratio is the median of per-round ratios, resampled over processes and then rounds
    const groups = live[0]!.cell.rounds.map((r) => r.process);
    const compare = (e: Comparison) => ledger.compare({ ...e, paired: true, groups });
    const find = (name: string) => live.find((l) => l.c.name === name)?.cell;
    const by = (name: string) => find(name)!;
    const st = by('stampede');
    const why = (...cs: FanoutCell[]) => cs.flatMap((c) => c.flags.map((f) => `${c.contestant}: ${f}`)).join('; ') || undefined;
    const fig = (k: RoundFigure) => (c: FanoutCell) => col(c.rounds, k);
    const cps = fig('chunksPerCpuSec');
    for (const [base, target] of [
      ['bare-ws', { text: '≥ 1.1× with the interval above 1.0', test: (r: Estimate) => r.median >= 1.1 && r.lo > 1 }],
      ['ws-frame-once', undefined],
      ['net-floor', undefined],
      ['socketio', { text: '≥ 2× where Socket.IO keeps up', test: (r: Estimate) => r.median >= 2 }],
      ['stampede-before', undefined],
    ] as const) {
      const b = find(base);
      if (!b) continue;
      compare({ part: 'fanout', name: `chunks per server CPU-second, ${n} listeners, vs ${FANOUT.find((c) => c.name === base)!.label}`, unit: 'chunks/cpu-s', better: 'higher', a: cps(st), baselineName: base, b: cps(b), excluded: why(st, b), ...(target ? { target } : {}) });
    }
    const bareWs = find('bare-ws');
    const netFloor = find('net-floor');
    if (bareWs && netFloor) {
      // the headroom one write per listener has over bare ws: Stampede can reach ≥ 1.1× bare ws only if the floor does
      compare({ part: 'fanout', name: `the node:net floor vs bare ws (send per client): chunks per server CPU-second, ${n} listeners (the headroom for Stampede's ≥ 1.1× target)`, unit: 'chunks/cpu-s', better: 'higher', a: cps(netFloor), baselineName: 'bare-ws', b: cps(bareWs), excluded: why(netFloor, bareWs), target: { text: '≥ 1.1× with the interval above 1.0 (else ≥ 1.1× bare ws is out of reach for one write per listener)', test: (r: Estimate) => r.median >= 1.1 && r.lo > 1 } });
    }
    const before = find('stampede-before');
    if (before) {
      compare({ part: 'fanout', name: `server CPU per chunk, ${n} listeners, vs ${BEFORE_LABEL}`, unit: 'µs', better: 'lower', a: fig('cpuMicrosPerChunk')(st), baselineName: 'stampede-before', b: fig('cpuMicrosPerChunk')(before), excluded: why(st, before) });
      compare({ part: 'fanout', name: `server user CPU per chunk, ${n} listeners, vs ${BEFORE_LABEL}`, unit: 'µs', better: 'lower', a: fig('userMicrosPerChunk')(st), baselineName: 'stampede-before', b: fig('userMicrosPerChunk')(before), excluded: why(st, before) });
    }
    const co = find('stampede-coalesce');
    if (co) {
      // an operating point of its own, never mixed with the default: listener-audio-seconds per server CPU-second, at its p99
      const las = (c: FanoutCell) => cps(c).map((x) => (x * CHUNK_INTERVAL_MS) / 1000);
      compare({ part: 'fanout', name: `coalesced (${COALESCED}): listener-audio-seconds per server CPU-second, ${n} listeners, vs Stampede writing each chunk`, unit: 'listener-s/cpu-s', better: 'higher', a: las(co), baselineName: 'stampede', b: las(st), excluded: why(st, co) });
      compare({ part: 'fanout', name: `coalesced (${COALESCED}): p99 delivery latency from due time, ${n} listeners, vs Stampede writing each chunk`, unit: 'ms', better: 'lower', a: fig('p99Ms')(co), baselineName: 'stampede', b: fig('p99Ms')(st), excluded: why(st, co) });
    }
    const floor = find('net-floor');
    if (floor) {
    compare({ part: 'fanout', name: `server CPU per chunk, ${n} listeners, vs the node:net floor`, unit: 'µs', better: 'lower', a: fig('cpuMicrosPerChunk')(st), baselineName: 'net-floor', b: fig('cpuMicrosPerChunk')(floor), excluded: why(st, floor), target: { text: 'within 1.15× of the floor', test: (r) => r.median <= 1.15 } });
    compare({ part: 'fanout', name: `server user CPU per chunk, ${n} listeners, vs the node:net floor`, unit: 'µs', better: 'lower', a: fig('userMicrosPerChunk')(st), baselineName: 'net-floor', b: fig('userMicrosPerChunk')(floor), excluded: why(st, floor) });
    compare({ part: 'fanout', name: `server system CPU per chunk, ${n} listeners, vs the node:net floor`, unit: 'µs', better: 'lower', a: fig('systemMicrosPerChunk')(st), baselineName: 'net-floor', b: fig('systemMicrosPerChunk')(floor), excluded: why(st, floor) });
    }
    const mixed = find('net-floor-mixed');
    if (mixed && floor) {
      compare({ part: 'fanout', name: `the node:net floor with a ws Receiver and an fs.WriteStream written per chunk: server CPU per chunk, ${n} listeners, vs the floor alone`, unit: 'µs', better: 'lower', a: fig('cpuMicrosPerChunk')(mixed), baselineName: 'net-floor', b: fig('cpuMicrosPerChunk')(floor), excluded: why(mixed, floor) });
      compare({ part: 'fanout', name: `the same, user CPU per chunk, ${n} listeners, vs the floor alone`, unit: 'µs', better: 'lower', a: fig('userMicrosPerChunk')(mixed), baselineName: 'net-floor', b: fig('userMicrosPerChunk')(floor), excluded: why(mixed, floor) });
      compare({ part: 'fanout', name: `server CPU per chunk, ${n} listeners, vs the node:net floor with a ws Receiver and an fs.WriteStream`, unit: 'µs', better: 'lower', a: fig('cpuMicrosPerChunk')(st), baselineName: 'net-floor-mixed', b: fig('cpuMicrosPerChunk')(mixed), excluded: why(st, mixed) });
    }
    const spread = find('net-floor-spread');
    if (spread && floor) {
      compare({ part: 'fanout', name: `the node:net floor with ~2.6 KiB of JS objects kept per listener: server CPU per chunk, ${n} listeners, vs the floor alone`, unit: 'µs', better: 'lower', a: fig('cpuMicrosPerChunk')(spread), baselineName: 'net-floor', b: fig('cpuMicrosPerChunk')(floor), excluded: why(spread, floor) });
      compare({ part: 'fanout', name: `server CPU per chunk, ${n} listeners, vs the node:net floor with ~2.6 KiB of JS objects kept per listener`, unit: 'µs', better: 'lower', a: fig('cpuMicrosPerChunk')(st), baselineName: 'net-floor-spread', b: fig('cpuMicrosPerChunk')(spread), excluded: why(st, spread) });
    }
    const direct = find('net-floor-direct');
    if (direct && floor) {
      compare({ part: 'fanout', name: `the node:net floor writing straight to the libuv handle: server CPU per chunk, ${n} listeners, vs the floor (socket.write)`, unit: 'µs', better: 'lower', a: fig('cpuMicrosPerChunk')(direct), baselineName: 'net-floor', b: fig('cpuMicrosPerChunk')(floor), excluded: why(direct, floor) });
      compare({ part: 'fanout', name: `the same, user CPU per chunk, ${n} listeners, vs the floor (socket.write)`, unit: 'µs', better: 'lower', a: fig('userMicrosPerChunk')(direct), baselineName: 'net-floor', b: fig('userMicrosPerChunk')(floor), excluded: why(direct, floor) });
    }
    const bare = find('bare-ws');
    const turns = [['stampede-unpaced', 'Stampede unpaced'], ['stampede-turn8', 'Stampede with 8 ms turns'], ['stampede-turn16', 'Stampede with 16 ms turns']] as const;
    for (const [name, what] of [['stampede-net', "Stampede read by the floor's raw TCP reader"], ...turns, ['stampede-socket-write', 'Stampede writing through socket.write']] as const) {
      const x = find(name);
      if (!x) continue;
      compare({ part: 'fanout', name: `${what}: server CPU per chunk, ${n} listeners, vs Stampede`, unit: 'µs', better: 'lower', a: fig('cpuMicrosPerChunk')(x), baselineName: 'stampede', b: fig('cpuMicrosPerChunk')(st), excluded: why(x, st) });
      if (floor) compare({ part: 'fanout', name: `${what}: server CPU per chunk, ${n} listeners, vs the node:net floor`, unit: 'µs', better: 'lower', a: fig('cpuMicrosPerChunk')(x), baselineName: 'net-floor', b: fig('cpuMicrosPerChunk')(floor), excluded: why(x, floor) });
    }
    // what the pacing turn trades: CPU per chunk (above) against the listeners' latency, the loop's stall and a request's wait
    for (const [name, what] of turns) {
      const x = find(name);
      if (!x) continue;
      compare({ part: 'fanout', name: `${what}: p99 delivery latency from due time, ${n} listeners, vs Stampede (4 ms turns)`, unit: 'ms', better: 'lower', a: fig('p99Ms')(x), baselineName: 'stampede', b: fig('p99Ms')(st), excluded: why(x, st) });
      if (!CFG.probes) continue;
      for (const [k, label] of [['loopP99Ms', 'event-loop delay p99'], ['loopMaxMs', 'event-loop delay max'], ['joinP50Ms', 'join during fan-out, median'], ['joinP99Ms', 'join during fan-out, p99'], ['metricsP50Ms', '/metrics scrape during fan-out, median']] as const) {
        compare({ part: 'fanout', name: `${what}: ${label}, ${n} listeners, vs Stampede (4 ms turns)`, unit: 'ms', better: 'lower', a: fig(k)(x), baselineName: 'stampede', b: fig(k)(st), excluded: why(x, st) });
      }
    }
    if (CFG.probes) {
      for (const l of live.filter((l) => l.c.flavor === 'stampede')) {
        const w = l.cell.rounds.flatMap((r) => r.windows);
        const all = (k: 'joinMs' | 'metricsMs') => w.flatMap((x) => x.probes?.[k] ?? []);
        const f = (xs: number[]) => `p50 ${quantile(xs, 0.5).toFixed(1)}, p99 ${quantile(xs, 0.99).toFixed(1)}, max ${Math.max(...xs).toFixed(1)} ms (${xs.length})`;
        log(`  ${l.c.name}, ${n} listeners, pooled: joins ${f(all('joinMs'))}; /metrics ${f(all('metricsMs'))}; loop delay p99 ${f(w.map((x) => x.loop?.p99Ms ?? NaN))}, max ${f(w.map((x) => x.loop?.maxMs ?? NaN))}; failed probes ${w.reduce((a, x) => a + (x.probes?.failed ?? 0), 0)}`);
      }
    }
    if (bare) compare({ part: 'fanout', name: `p99 delivery latency from due time, ${n} listeners, vs bare ws`, unit: 'ms', better: 'lower', a: fig('p99Ms')(st), baselineName: 'bare-ws', b: fig('p99Ms')(bare), excluded: why(st, bare) });
  }
  raw.fanout = cells;
  // memory at the largest size: each server's RSS per idle listener (young generation left out: see MemReading), and each swarm's
  const big = cells.filter((c) => c.listeners === Math.max(...CFG.sizes));
  for (const c of big) {
    against({ part: 'memory', name: `${c.contestant}: server RSS per connected idle listener, less V8's young generation (${c.connected.toLocaleString('en-US')})`, unit: 'KiB', better: 'lower', a: c.serverMemPerListenerKiB.rssLessYoung, limit: 8, limitName: 'target 8 KiB' });
  }
  const sw = big.find((c) => c.contestant === 'stampede');
  if (sw) against({ part: 'memory', name: `client swarm RSS per listener (Stampede's, ${sw.connected.toLocaleString('en-US')})`, unit: 'KiB', better: 'lower', a: [sw.swarmRssPerListenerKiB], limit: 40, limitName: 'target 40 KiB' });
}

// ───────────────────────────── join path ─────────────────────────────

interface HttpWindow {
  /** Its place in the round's palindromic order of windows. */
  position: number;
  perSec: number;
  requests: number;
  seconds: number;
  cpuMicrosPerRequest: number;
}

interface HttpRound {
  round: number;
  perSec: number;
  cpuMicrosPerRequest: number;
  userMicrosPerRequest: number;
  systemMicrosPerRequest: number;
  p99Ms: number;
  requests: number;
  redeemed: number;
  statuses: Record<string, number>;
  /** The round's windows of this case (two in the join part: one each side of the palindrome), every one kept. */
  windows?: HttpWindow[];
  /** Which of the server's BENCH_PROCS processes served the round (join part: round mod BENCH_PROCS). */
  process?: number;
}

interface HttpServer {
  name: string;
  proc: Proc;
  port: number;
  spaceId: string;
}

async function httpServer(name: string, args: string[] = [], script = `servers/${name}`): Promise<HttpServer> {
  const proc = spawnProc(script, args, PIN.server, [], name);
  const info = await proc.call<{ port: number; spaceId: string }>('info');
  return { name, proc, port: info.port, spaceId: info.spaceId };
}

async function closedRound(gen: Proc, s: HttpServer, method: 'GET' | 'POST', path: string, redeem: boolean, round: number, durationMs = CFG.httpMs): Promise<HttpRound & { seconds: number }> {
  const m0 = await s.proc.call<Mark>('mark');
  const r = await gen.call<{ requests: number; perSec: number; p99Ms: number; redeemed: number; seconds: number; statuses: Record<string, number> }>('closed', { host: '127.0.0.1', port: s.port, method, path, body: '', connections: CFG.httpConnections, durationMs, redeem });
  const m1 = await s.proc.call<Mark>('mark');
  const n = Math.max(1, r.requests);
  const user = m1.userMicros - m0.userMicros;
  const sys = m1.systemMicros - m0.systemMicros;
  return { round, perSec: r.perSec, cpuMicrosPerRequest: (user + sys) / n, userMicrosPerRequest: user / n, systemMicrosPerRequest: sys / n, p99Ms: r.p99Ms, requests: r.requests, redeemed: r.redeemed, statuses: r.statuses, seconds: r.seconds };
}

/** One case's windows of a round as one round: requests over seconds, CPU over requests, the worst p99. */
function joinWindows(round: number, ws: Window<HttpRound & { seconds: number }>[]): HttpRound {
  const requests = ws.reduce((a, x) => a + x.w.requests, 0);
  const seconds = ws.reduce((a, x) => a + x.w.seconds, 0);
  const n = Math.max(1, requests);
  const user = ws.reduce((a, x) => a + x.w.userMicrosPerRequest * Math.max(1, x.w.requests), 0);
  const sys = ws.reduce((a, x) => a + x.w.systemMicrosPerRequest * Math.max(1, x.w.requests), 0);
  const statuses: Record<string, number> = {};
  for (const { w } of ws) for (const [code, c] of Object.entries(w.statuses)) statuses[code] = (statuses[code] ?? 0) + c;
  return {
    round,
    perSec: requests / Math.max(1e-9, seconds),
    cpuMicrosPerRequest: (user + sys) / n,
    userMicrosPerRequest: user / n,
    systemMicrosPerRequest: sys / n,
    p99Ms: Math.max(...ws.map((x) => x.w.p99Ms)),
    requests,
    redeemed: ws.reduce((a, x) => a + x.w.redeemed, 0),
    statuses,
    windows: ws.map(({ position, w }) => ({ position, perSec: w.perSec, requests: w.requests, seconds: w.seconds, cpuMicrosPerRequest: w.cpuMicrosPerRequest })),
  };
}

const joinPath = (s: HttpServer) => `/api/v1/spaces/${s.spaceId}/join`;
const detailsPath = (s: HttpServer) => `/api/v1/spaces/${s.spaceId}`;

let joinCapacity = 0;

/**
 * The join path. The machine's speed drifts by up to 2× within a run (a slow spell lasts several
 * rounds and moves every server alike), so contestants are compared in adjacent windows: each round,
 * each kind of request runs its servers in a shuffled order and then in the reverse order (A B C C B A),
 * BENCH_HTTP_MS / 2 each, so a linear drift falls equally on every server, and each ratio is the median
 * of the per-round ratios. Each server runs as BENCH_PROCS processes, round r on process r mod
 * BENCH_PROCS of every server, and the bootstrap goes over processes, then rounds. Every window is kept.
 */
async function partJoin(): Promise<void> {
  const gen = spawnProc('loadgen', [], PIN.client);
  const spawnOne = (name: string) => (name === 'stampede-before' ? httpServer(name, [], beforeServer('stampede')) : httpServer(name));
  const servers: HttpServer[][] = [];
  for (const name of ['stampede', 'bare-http', 'validating-http', ...(CFG.before ? ['stampede-before'] : [])]) {
    const procs: HttpServer[] = [];
    for (let p = 0; p < CFG.procs; p++) procs.push(await spawnOne(name));
    servers.push(procs);
  }
  type Case = { key: string; procs: HttpServer[]; method: 'GET' | 'POST'; path: (s: HttpServer) => string; redeem: boolean };
  const name = (ps: HttpServer[]) => ps[0]!.name;
  const kinds: Case[][] = [
    servers.map((ps) => ({ key: `join/${name(ps)}`, procs: ps, method: 'POST' as const, path: joinPath, redeem: false })),
    servers.filter((ps) => name(ps) !== 'stampede-before').map((ps) => ({ key: `join+redeem/${name(ps)}`, procs: ps, method: 'POST' as const, path: joinPath, redeem: true })),
    servers.filter((ps) => name(ps) !== 'validating-http').map((ps) => ({ key: `details/${name(ps)}`, procs: ps, method: 'GET' as const, path: detailsPath, redeem: false })),
  ];
  const cases = kinds.flat();
  const windowMs = Math.max(1, Math.round(CFG.httpMs / 2));
  const rounds: Record<string, HttpRound[]> = Object.fromEntries(cases.map((c) => [c.key, []]));
  try {
    // the warm-up takes BENCH_HTTP_MS per case, shared by its processes
    log(`join path: warming up every server (${CFG.procs} process${CFG.procs === 1 ? '' : 'es'} each)`);
    for (const c of cases) for (const s of c.procs) await closedRound(gen, s, c.method, c.path(s), c.redeem, -1, Math.max(1, Math.round(CFG.httpMs / CFG.procs)));
    for (let r = 0; r < CFG.rounds; r++) {
      const p = r % CFG.procs;
      for (const kind of shuffled(kinds, rng.next)) {
        const got = await palindrome(kind, rng.next, (c) => closedRound(gen, c.procs[p]!, c.method, c.path(c.procs[p]!), c.redeem, r, windowMs));
        for (const c of kind) rounds[c.key]!.push({ ...joinWindows(r, got.get(c)!), process: p });
      }
      log(`  round ${r + 1}/${CFG.rounds} (process ${p + 1}): ${cases.map((c) => `${c.key} ${Math.round(rounds[c.key]!.at(-1)!.perSec)}/s`).join(', ')}`);
    }
  } finally {
    await gen.stop();
    await Promise.all(servers.flat().map((s) => s.proc.stop()));
  }
  raw.join = rounds;
  // the same build in another process: each case's median per process, and its ratio to the first process's
  const spread = (key: string, f: 'perSec' | 'cpuMicrosPerRequest') => {
    const of = (p: number) => rounds[key]!.filter((x) => x.process === p).map((x) => x[f]);
    return Array.from({ length: CFG.procs }, (_, p) => ({ median: estimate(of(p)).median, vsFirst: vsFirst(p, of(p), of(0)) }));
  };
  raw.joinProcesses = Object.fromEntries(cases.map((c) => [c.key, { perSec: spread(c.key, 'perSec'), cpuMicrosPerRequest: spread(c.key, 'cpuMicrosPerRequest') }]));
  const groups = rounds[cases[0]!.key]!.map((x) => x.process ?? 0);
  const compare = (e: Comparison) => ledger.compare({ ...e, groups });
  const k = (key: string, f: keyof HttpRound) => rounds[key]!.map((r) => r[f] as number);
  const bad = (key: string) => {
    const rs = rounds[key]!;
    const non2xx = rs.reduce((a, r) => a + r.requests - (r.statuses['200'] ?? 0), 0);
    const unredeemed = key.startsWith('join+redeem') ? rs.reduce((a, r) => a + ((r.statuses['200'] ?? 0) - r.redeemed), 0) : 0;
    return non2xx > 0 ? `${key}: ${non2xx} answers were not 200` : unredeemed > rs.length * CFG.httpConnections ? `${key}: ${unredeemed} tickets not redeemed` : undefined;
  };
  const why = (...keys: string[]) => keys.map(bad).filter(Boolean).join('; ') || undefined;
  for (const [kind, label] of [['join', 'join (POST …/join)'], ['join+redeem', 'join and redeem the ticket']] as const) {
    const st = `${kind}/stampede`;
    for (const [base, baseLabel, rpsTarget, cpuTarget] of [
      ['bare-http', 'bare node:http', 0.8, 1.25],
      ['validating-http', 'node:http with the same parsing and validation', 0.95, undefined],
    ] as const) {
      const b = `${kind}/${base}`;
      compare({ part: 'join', paired: true, name: `${label}: requests/s vs ${baseLabel}`, unit: 'req/s', better: 'higher', a: k(st, 'perSec'), baselineName: base, b: k(b, 'perSec'), excluded: why(st, b), ...(kind === 'join' ? { target: { text: `≥ ${rpsTarget}×`, test: (r: Estimate) => r.median >= rpsTarget } } : {}) });
      compare({ part: 'join', paired: true, name: `${label}: server CPU per request vs ${baseLabel}`, unit: 'µs', better: 'lower', a: k(st, 'cpuMicrosPerRequest'), baselineName: base, b: k(b, 'cpuMicrosPerRequest'), excluded: why(st, b), ...(kind === 'join' && cpuTarget ? { target: { text: `≤ ${cpuTarget}×`, test: (r: Estimate) => r.median <= cpuTarget } } : {}) });
    }
  }
  if (CFG.before) {
    for (const [kind, label] of [['join', 'join (POST …/join)'], ['details', 'space details (GET …/:id)']] as const) {
      const [st, b] = [`${kind}/stampede`, `${kind}/stampede-before`];
      compare({ part: 'join', paired: true, name: `${label}: requests/s vs ${BEFORE_LABEL}`, unit: 'req/s', better: 'higher', a: k(st, 'perSec'), baselineName: 'stampede-before', b: k(b, 'perSec'), excluded: why(st, b) });
      compare({ part: 'join', paired: true, name: `${label}: server CPU per request vs ${BEFORE_LABEL}`, unit: 'µs', better: 'lower', a: k(st, 'cpuMicrosPerRequest'), baselineName: 'stampede-before', b: k(b, 'cpuMicrosPerRequest'), excluded: why(st, b) });
    }
  }
  compare({ part: 'join', paired: true, name: 'space details (GET …/:id): requests/s vs bare node:http', unit: 'req/s', better: 'higher', a: k('details/stampede', 'perSec'), baselineName: 'bare-http', b: k('details/bare-http', 'perSec'), excluded: why('details/stampede', 'details/bare-http'), target: { text: '≥ 0.9×', test: (r) => r.median >= 0.9 } });
  compare({ part: 'join', paired: true, name: 'space details: server CPU per request vs bare node:http', unit: 'µs', better: 'lower', a: k('details/stampede', 'cpuMicrosPerRequest'), baselineName: 'bare-http', b: k('details/bare-http', 'cpuMicrosPerRequest'), excluded: why('details/stampede', 'details/bare-http') });
  // the between-process spread of details (two processes of one build differed by up to 1.18× in session 10): the
  // second process's rounds against the first's neighbouring rounds, per pair
  if (CFG.procs > 1) {
    for (const s of ['stampede', 'bare-http']) {
      const of = (p: number) => rounds[`details/${s}`]!.filter((x) => x.process === p).map((x) => x.cpuMicrosPerRequest);
      ledger.compare({ part: 'join', paired: true, name: `space details: server CPU per request, ${s}'s process 2 vs its process 1 (the same build in another process)`, unit: 'µs', better: 'lower', a: of(1), baselineName: `${s} process 1`, b: of(0), excluded: why(`details/${s}`) });
    }
  }
  joinCapacity = estimate(k('join/stampede', 'perSec')).median;
}

// ───────────────────────────── graceful overload ─────────────────────────────

export interface OverloadPoint {
  server: string;
  factor: number;
  offeredPerSec: number;
  goodputPerSec: number;
  p99Ms: number | null;
  unanswered: number;
  /** Requests lost with a connection the server closed (sent, never answered); the load generator connects again. */
  dropped: number;
  statuses: Record<string, number>;
  /** Server CPU per answered request (admitted or refused), µs. */
  cpuMicrosPerAnswer: number;
  /** Its user-mode part, µs (the rest is the kernel's: loopback TCP, system calls). */
  userMicrosPerAnswer?: number;
  /** p99 of the server's event-loop delay during the point, ms (what the shedder's lag reading sees). */
  loopP99Ms: number;
  /** The worst single event-loop delay of the server during the point, ms (a stall the p99 would hide). */
  loopMaxMs?: number;
  /** CPU time other processes and interrupts took on the server's core during the point, ms (null unpinned): a server that lost its core looks slow. */
  coreOtherMs?: number | null;
  /** The load generator measuring itself: its event-loop delay (p99, max), CPU during the point, and how late it wrote what was due. */
  gen?: { loopP99Ms: number; loopMaxMs: number; cpuMs: number; sendLagMaxMs: number };
  /** Stampede's own view of the point, from its /metrics before and after: V8's GC time (ms) and collections by kind, and its join attempts by outcome. */
  internals?: { gcMs: Record<string, number>; gcCount: Record<string, number>; joins: Record<string, number> };
  /** The load generator's timeline in slices of `ms`: requests due, 200s and refusals answered, and the worst 200's latency (ms) in each. */
  slices?: { ms: number; sent: number[]; ok: number[]; refused: number[]; okMaxMs: number[] };
  /** Wall-clock ISO times the point began and ended (a point that spans a pause of the machine's processes is void). */
  from?: string;
  to?: string;
  round: number;
}

/** Sums of a Stampede's /metrics series that say what it did during an overload point (null for other servers). */
async function internals(s: HttpServer): Promise<Map<string, number> | null> {
  if (!s.name.startsWith('stampede')) return null;
  const text = await (await fetch(`http://127.0.0.1:${s.port}/metrics`)).text().catch(() => '');
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^(nodejs_gc_duration_seconds_(?:sum|count)\{kind="(\w+)"\}|stampede_join_attempts_total\{[^}]*outcome="(\w+)"[^}]*\}) (\S+)$/.exec(line);
    if (!m) continue;
    const key = m[2] ? `${line.includes('_sum') ? 'gcMs' : 'gcCount'} ${m[2]}` : `joins ${m[3]}`;
    out.set(key, (out.get(key) ?? 0) + Number(m[4]) * (key.startsWith('gcMs') ? 1000 : 1));
  }
  return out;
}

function internalsDiff(a: Map<string, number> | null, b: Map<string, number> | null): OverloadPoint['internals'] {
  if (!a || !b) return undefined;
  const r = { gcMs: {} as Record<string, number>, gcCount: {} as Record<string, number>, joins: {} as Record<string, number> };
  for (const [k, v] of b) {
    const [group, name] = k.split(' ') as ['gcMs' | 'gcCount' | 'joins', string];
    const d = v - (a.get(k) ?? 0);
    if (d) r[group][name] = Math.round(d * 10) / 10;
  }
  return r;
}

/** One overload series: the points of every server at every offered factor of one capacity, and where that capacity came from. */
export interface OverloadSeries {
  capacity: number;
  /** What `capacity` is: the admission budget or the server's HTTP maximum, and how it was chosen. */
  definition: 'budget' | 'max';
  source: string;
  points: OverloadPoint[];
  /** Each server's warm-up point (the top factor, on a freshly started server), kept out of the figures. */
  warmup?: OverloadPoint[];
}

const OVERLOAD_LABEL: Record<string, string> = { stampede: 'Stampede (admission on)', 'bare-http': 'bare node:http (no admission)', 'stampede-before': `${BEFORE_LABEL} (admission on)` };

async function partOverload(): Promise<void> {
  const gen = spawnProc('loadgen', [], PIN.client);
  try {
    // the admission budget first: it needs no measured capacity
    if (CFG.overloadDefs.includes('budget')) {
      const fromEnv = env.BENCH_OVERLOAD_BUDGET !== undefined;
      const source = fromEnv ? 'BENCH_OVERLOAD_BUDGET' : "the server's default join token-bucket rate (joinRatePerSecond)";
      log(`graceful overload at the admission budget: ${CFG.overloadBudget} joins/s (${source}); admission set to it`);
      raw.overloadBudget = await overloadSeries(gen, 'budget', Math.round(CFG.overloadBudget), source, false, CFG.overloadRounds);
    }
    if (CFG.overloadDefs.includes('max')) {
      if (CFG.overloadCapacity > 0) joinCapacity = CFG.overloadCapacity;
      const source = CFG.overloadCapacity > 0 ? 'BENCH_OVERLOAD_CAPACITY' : "Stampede's measured closed-loop join rate (its HTTP maximum)";
      if (!joinCapacity) {
        const s = await httpServer('stampede');
        const rs: number[] = [];
        for (let r = 0; r < 3; r++) rs.push((await closedRound(gen, s, 'POST', joinPath(s), false, r)).perSec);
        await s.proc.stop();
        joinCapacity = estimate(rs).median;
      }
      log(`graceful overload at the HTTP maximum: capacity ${Math.round(joinCapacity)} joins/s (${source}); admission set to it`);
      raw.overload = await overloadSeries(gen, 'max', Math.round(joinCapacity), source, CFG.overloadNoShed, CFG.overloadMaxRounds);
    }
  } finally {
    await gen.stop();
  }
}

/**
 * Open-loop joins at every factor of `capacity`, shuffled, against Stampede with its admission on (a
 * token bucket at the capacity, burst a tenth of it, shedding on 250 ms of event-loop lag) and bare
 * node:http with none; each point's goodput, p99 of admitted joins, refusals, CPU per answer and loop delay.
 */
async function overloadSeries(gen: Proc, definition: OverloadSeries['definition'], capacity: number, source: string, noShed: boolean, rounds: number): Promise<OverloadSeries> {
  const what = definition === 'budget' ? 'the join budget' : 'capacity';
  const admission = [JSON.stringify({ joinRatePerSecond: capacity, joinBurst: Math.max(1, Math.round(capacity / 10)), shedEventLoopLagMs: 250 })];
  const servers = [await httpServer('stampede', [JSON.stringify({ ...JSON.parse(admission[0]!), ...CFG.overloadStampede })]), await httpServer('bare-http'), ...(CFG.before ? [await httpServer('stampede-before', admission, beforeServer('stampede'))] : []),
    ...(noShed ? [await httpServer('stampede-noshed', [JSON.stringify({ joinRatePerSecond: capacity * CFG.overloadNoShedShare, joinBurst: Math.max(1, Math.round((capacity * CFG.overloadNoShedShare) / 10)), shedEventLoopLagMs: 600_000 })], 'servers/stampede')] : [])];
  const points: OverloadPoint[] = [];
  const warmup: OverloadPoint[] = [];
  const top = Math.max(...CFG.overloadFactors);
  /** One open-loop point: `factor` × capacity at server `s` for BENCH_OVERLOAD_MS, with what it cost the server. */
  const point = async (s: HttpServer, factor: number, round: number): Promise<OverloadPoint> => {
    // an earlier build (BENCH_BEFORE) may not read its loop delay: NaN then
    const loopDelay = () => s.proc.call<{ p99Ms: number; maxMs: number }>('loop').catch(() => ({ p99Ms: NaN, maxMs: NaN }));
    const i0 = await internals(s);
    const from = new Date().toISOString();
    const [m0, , core0] = await Promise.all([s.proc.call<Mark>('mark'), loopDelay(), coreBusyMicros(PIN.server)]);
    const o = await gen.call<{ offeredPerSec: number; goodputPerSec: number; p99Ms: number | null; answered: number; unanswered: number; dropped: number; statuses: Record<string, number>; gen: NonNullable<OverloadPoint['gen']>; slices: OverloadPoint['slices'] }>('open', { host: '127.0.0.1', port: s.port, method: 'POST', path: joinPath(s), body: '', rate: capacity * factor, connections: CFG.httpConnections, durationMs: CFG.overloadMs, graceMs: Math.min(2_000, CFG.overloadMs) });
    const [m1, loop, core1] = await Promise.all([s.proc.call<Mark>('mark'), loopDelay(), coreBusyMicros(PIN.server)]);
    // what each answer (admitted or refused) cost the server, and how far its event loop fell behind meanwhile
    const serverMicros = m1.userMicros + m1.systemMicros - m0.userMicros - m0.systemMicros;
    const cpuMicrosPerAnswer = serverMicros / Math.max(1, o.answered);
    const userMicrosPerAnswer = (m1.userMicros - m0.userMicros) / Math.max(1, o.answered);
    const coreOtherMs = core0 === null || core1 === null ? null : Math.max(0, core1 - core0 - serverMicros) / 1000;
    const i1 = await internals(s);
    const to = new Date().toISOString();
    // let queues drain and the admission bucket refill before the next point (half a second when all was answered)
    await wait(Math.min(o.unanswered > 0 ? 1_000 : 500, CFG.overloadMs));
    return { server: s.name, factor, offeredPerSec: o.offeredPerSec, goodputPerSec: o.goodputPerSec, p99Ms: o.p99Ms, unanswered: o.unanswered, dropped: o.dropped, statuses: o.statuses, cpuMicrosPerAnswer, userMicrosPerAnswer, loopP99Ms: loop.p99Ms, loopMaxMs: loop.maxMs, coreOtherMs, gen: o.gen, internals: internalsDiff(i0, i1), slices: o.slices, from, to, round };
  };
  try {
    // a freshly started server meets its first flood with cold code: in four runs the first 10× point of
    // a new Stampede was its slowest (p99 0.7–1.2 s; once 0.54× the budget while it warmed up). Each server
    // takes one point at the top factor first, kept in `warmup` and out of the figures (the join part warms up too).
    for (const s of servers) warmup.push(await point(s, top, -1));
    for (let r = 0; r < rounds; r++) {
      for (const factor of shuffled(CFG.overloadFactors, rng.next)) {
        for (const s of shuffled(servers, rng.next)) points.push(await point(s, factor, r));
      }
      log(`  overload (${what}) round ${r + 1}/${rounds} done`);
    }
  } finally {
    await Promise.all(servers.map((s) => s.proc.stop()));
  }
  const of = (name: string, factor: number) => points.filter((p) => p.server === name && p.factor === factor);
  const at = definition === 'budget' ? ` the join budget (${capacity.toLocaleString('en-US')}/s)` : ' capacity';
  for (const s of servers) {
    const label = OVERLOAD_LABEL[s.name] ?? `Stampede (token bucket only at ${CFG.overloadNoShedShare}× capacity, shedding off)`;
    against({ part: 'overload', name: `${label} at ${top}×${at}: goodput as a share of ${what}`, unit: `× ${what}`, better: 'higher', a: of(s.name, top).map((p) => p.goodputPerSec / capacity), limit: 0.9, limitName: `target 0.9× ${what}` });
    against({ part: 'overload', name: `${label} at ${top}×${at}: p99 of admitted joins (from due time)`, unit: 'ms', better: 'lower', a: of(s.name, top).map((p) => p.p99Ms), limit: 1000, limitName: 'target 1 s' });
  }
  if (CFG.before) {
    // before/after at every factor, rounds interleaved in the same run
    for (const factor of CFG.overloadFactors) {
      const [st, b] = [of('stampede', factor), of('stampede-before', factor)];
      compare({ part: 'overload', name: `goodput at ${factor}×${at} vs ${BEFORE_LABEL}`, unit: 'joins/s', better: 'higher', a: st.map((p) => p.goodputPerSec), baselineName: 'stampede-before', b: b.map((p) => p.goodputPerSec) });
      compare({ part: 'overload', name: `p99 of admitted joins at ${factor}×${at} vs ${BEFORE_LABEL}`, unit: 'ms', better: 'lower', a: st.flatMap((p) => p.p99Ms ?? []), baselineName: 'stampede-before', b: b.flatMap((p) => p.p99Ms ?? []) });
      compare({ part: 'overload', name: `server CPU per answer (admitted or refused) at ${factor}×${at} vs ${BEFORE_LABEL}`, unit: 'µs', better: 'lower', a: st.map((p) => p.cpuMicrosPerAnswer), baselineName: 'stampede-before', b: b.map((p) => p.cpuMicrosPerAnswer) });
    }
  }
  return { capacity, definition, source, points, warmup };
}

// ───────────────────────────── /metrics ─────────────────────────────

/** A Stampede the /metrics part scrapes: one with no listeners, or one with BENCH_METRICS_LISTENERS connected. */
interface ScrapedServer {
  server: Proc;
  swarm: Proc | null;
  url: string;
  spaceId: string;
  connected: number;
}

/**
 * One case of the /metrics part: a server, and whether its audio is on while it is scraped; on air, where
 * in the chunk cadence its windows start: `random` (anywhere, as a scraper's own schedule lands) or `tick`
 * (as a chunk's fan-out starts, the worst phase).
 */
interface ScrapeCase {
  name: string;
  s: ScrapedServer;
  onAir: boolean;
  phase?: 'random' | 'tick';
}

/**
 * One window of scrapes of one case: every scrape's time in ms, the pause before each (BENCH_METRICS_GAP_MS),
 * the server's own mean time per answer, and on air how many ms after a chunk's tick the window started.
 */
interface ScrapeWindow {
  server: string;
  position: number;
  ms: number[];
  gapsMs: number[];
  serverMs: number | null;
  phaseMs?: number;
}

/**
 * `/metrics` with listeners against none. The machine drifts within a run (two readings of the same
 * code taken one after the other gave 1.30× and 0.915×), so the servers stand side by side — a Stampede
 * with no listeners and one with BENCH_METRICS_LISTENERS connected (and BENCH_BEFORE's pair when given) —
 * and each round scrapes every case in adjacent short windows in a palindromic order (A B C C B A): the
 * idle server, the one with listeners silent (audio off) and on air (audio on, after a warm-up). A ratio
 * is the median of the per-round ratios of median scrape times, with a bootstrap over rounds.
 * BENCH_METRICS_SAMPLES scrapes per case in all, from the scraper's own process; every one is kept, with
 * each window's mean server-side time per answer (the server's own request-duration histogram).
 * On air the loop writes each chunk to 2,000 listeners for the first ~25–35 ms of every 100, in turns of
 * `fanoutTurnMs`, and a scrape that comes then waits for the turn in progress; a window of ~13 scrapes
 * lasts ~30 ms, so where it starts in the cadence decides its figure. The ticker sends a chunk at once
 * when the audio starts, so a window after a warm-up of whole chunk intervals starts at a tick (the worst
 * phase: until session 10 every on-air window did); the target's case starts at a uniformly random phase
 * (a scraper's schedule knows nothing of the chunks), and the at-the-tick case is reported beside it.
 */
async function partMetrics(): Promise<void> {
  const scraper = spawnProc('loadgen', [], PIN.client);
  const servers: ScrapedServer[] = [];
  const serve = (script: string, name: string, listeners: boolean): ScrapedServer => {
    const s = { server: spawnProc(script, [], PIN.server, [], name), swarm: listeners ? spawnProc('swarm', [], PIN.client) : null, url: '', spaceId: '', connected: 0 };
    servers.push(s);
    return s;
  };
  const idle = serve('servers/stampede', 'stampede-idle', false);
  const busy = serve('servers/stampede', 'stampede-busy', true);
  const cases: ScrapeCase[] = [
    { name: 'stampede-idle', s: idle, onAir: false },
    { name: 'stampede-silent', s: busy, onAir: false },
    { name: 'stampede-busy', s: busy, onAir: true, phase: 'random' },
    { name: 'stampede-busy-tick', s: busy, onAir: true, phase: 'tick' },
  ];
  if (CFG.before) {
    // the earlier build's idle and on-air cases, in the same rounds
    cases.push({ name: 'stampede-before-idle', s: serve(beforeServer('stampede'), 'stampede-before-idle', false), onAir: false });
    const beforeBusy = serve(beforeServer('stampede'), 'stampede-before-busy', true);
    cases.push({ name: 'stampede-before-busy', s: beforeBusy, onAir: true, phase: 'random' });
    cases.push({ name: 'stampede-before-busy-tick', s: beforeBusy, onAir: true, phase: 'tick' });
  }
  const perWindow = Math.max(2, Math.ceil(CFG.metricsSamples / (2 * CFG.metricsRounds)));
  const rounds: { round: number; windows: ScrapeWindow[] }[] = [];
  const bytes: Record<string, number> = {};
  let yielded = false;
  /** Whole chunk intervals of warm-up: the audio starts with a chunk, so a window right after it starts at a tick. */
  const warmup = Math.max(1, Math.ceil(CFG.warmupMs / CHUNK_INTERVAL_MS)) * CHUNK_INTERVAL_MS;
  /** One window of scrapes of one case; on air, the audio runs for it (after a warm-up, then the case's phase) and stops after it. */
  const window = async (c: ScrapeCase, samples: number): Promise<{ ms: number[]; gapsMs: number[]; serverMs: number | null; phaseMs?: number }> => {
    const gapsMs = Array.from({ length: samples }, () => (CFG.metricsGapMs > 0 ? Math.round(gapRng.next() * CFG.metricsGapMs * 10) / 10 : 0));
    let phaseMs: number | undefined;
    if (c.onAir) {
      phaseMs = c.phase === 'random' ? Math.round(phaseRng.next() * CHUNK_INTERVAL_MS * 10) / 10 : 0;
      await c.s.server.call('audio', { on: true });
      await wait(warmup + phaseMs);
    }
    const got = await scraper.call<{ ms: number[]; bytes: number; serverMs: number | null }>('scrape', { url: `${c.s.url}/metrics`, gapsMs });
    if (c.onAir) await c.s.server.call('audio', { on: false });
    bytes[c.name] = got.bytes;
    return { ...got, gapsMs, ...(phaseMs === undefined ? {} : { phaseMs }) };
  };
  try {
    for (const s of servers) {
      const info = await s.server.call<{ port: number; spaceId: string }>('info');
      s.url = `http://127.0.0.1:${info.port}`;
      s.spaceId = info.spaceId;
    }
    // listeners connect to one server at a time, so connects do not compete
    for (const s of servers) {
      if (s.swarm) s.connected = (await s.swarm.call<{ connected: number }>('connect', { flavor: 'stampede', url: s.url, n: CFG.metricsListeners, spaceId: s.spaceId, budgetMs: CFG.connectBudgetMs })).connected;
    }
    // the swarm is load, the scraper the instrument: sharing the client core, the swarm (20,000 frames/s on
    // air) yields to it, as a real Prometheus elsewhere would not wait behind the listeners' clients
    yielded = servers.every((s) => !s.swarm || yieldCpu(s.swarm.pid));
    log(`/metrics: ${cases.map((c) => c.name).join(', ')}; ${busy.connected} listeners connected; ${CFG.metricsRounds} rounds, ${perWindow} scrapes per window; swarm ${yielded ? 'at nice 10' : 'at normal priority (could not lower it)'}`);
    for (const c of cases) await window(c, 20);
    for (let r = 0; r < CFG.metricsRounds; r++) {
      const got = await palindrome(cases, rng.next, (c) => window(c, perWindow));
      const windows = [...got].flatMap(([c, ws]) => ws.map(({ position, w }): ScrapeWindow => ({ server: c.name, position, ms: w.ms, gapsMs: w.gapsMs, serverMs: w.serverMs, ...(w.phaseMs === undefined ? {} : { phaseMs: w.phaseMs }) })));
      rounds.push({ round: r, windows: windows.sort((a, b) => a.position - b.position) });
    }
  } finally {
    await Promise.all([scraper.stop(), ...servers.map((s) => s.swarm?.stop())]);
    await Promise.all(servers.map((s) => s.server.stop()));
  }
  const of = (r: { windows: ScrapeWindow[] }, name: string) => r.windows.filter((w) => w.server === name);
  /** Every scrape of a case, in the order taken. */
  const all = (name: string) => rounds.flatMap((r) => of(r, name).flatMap((w) => w.ms));
  /** Per round, the median of a case's scrapes in its two windows. */
  const perRound = (name: string) => rounds.map((r) => estimate(of(r, name).flatMap((w) => w.ms)).median);
  /** Per round, the server's own mean time per answer over the case's two windows (NaN if it did not say). */
  const ownPerRound = (name: string) => rounds.map((r) => of(r, name).reduce((a, w) => a + (w.serverMs ?? NaN), 0) / 2);
  raw.metrics = { listeners: CFG.metricsListeners, connected: Object.fromEntries(cases.filter((c) => c.phase === 'random').map((c) => [c.name, c.s.connected])), gapMs: CFG.metricsGapMs, scrapesPerWindow: perWindow, swarmNice: yielded ? 10 : 0, bytes, idle: { ms: all('stampede-idle') }, busy: { ms: all('stampede-busy') }, rounds };
  const short = (c: ScrapedServer) => (c.connected < CFG.metricsListeners ? `connected ${c.connected} of ${CFG.metricsListeners}` : undefined);
  const n = busy.connected.toLocaleString('en-US');
  const each = `median per round of ${perWindow * 2} scrapes${CFG.metricsGapMs > 0 ? `, each after a random pause of 0–${CFG.metricsGapMs} ms` : ''}`;
  compare({ part: 'metrics', paired: true, name: `/metrics scrape time (${each}) with ${n} listeners on air vs none`, unit: 'ms', better: 'lower', a: perRound('stampede-busy'), baselineName: '0 listeners', b: perRound('stampede-idle'), excluded: short(busy), target: { text: '≤ 1.3×', test: (r) => r.median <= 1.3 } });
  compare({ part: 'metrics', paired: true, name: `/metrics scrape time (${each}) with ${n} listeners on air, windows starting at a chunk's tick (the worst phase), vs none`, unit: 'ms', better: 'lower', a: perRound('stampede-busy-tick'), baselineName: '0 listeners', b: perRound('stampede-idle'), excluded: short(busy) });
  compare({ part: 'metrics', paired: true, name: `/metrics scrape time (${each}) with ${n} listeners connected, audio off, vs none`, unit: 'ms', better: 'lower', a: perRound('stampede-silent'), baselineName: '0 listeners', b: perRound('stampede-idle'), excluded: short(busy) });
  compare({ part: 'metrics', paired: true, name: `/metrics server-side time per answer (its request-duration histogram) with ${n} listeners on air vs none`, unit: 'ms', better: 'lower', a: ownPerRound('stampede-busy'), baselineName: '0 listeners', b: ownPerRound('stampede-idle'), excluded: short(busy) });
  const p99 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length * 0.99)]!;
  log(`  /metrics p99: ${p99(all('stampede-busy')).toFixed(2)} ms on air vs ${p99(all('stampede-idle')).toFixed(2)} ms idle; ${bytes['stampede-busy']} vs ${bytes['stampede-idle']} bytes`);
  if (CFG.before) {
    const before = cases.find((c) => c.name === 'stampede-before-busy')!.s;
    compare({ part: 'metrics', paired: true, name: `/metrics scrape time with ${n} listeners on air vs ${BEFORE_LABEL}`, unit: 'ms', better: 'lower', a: perRound('stampede-busy'), baselineName: 'stampede-before', b: perRound('stampede-before-busy'), excluded: short(busy) ?? short(before) });
    compare({ part: 'metrics', paired: true, name: `/metrics scrape time with ${n} listeners on air, at a chunk's tick, vs ${BEFORE_LABEL}`, unit: 'ms', better: 'lower', a: perRound('stampede-busy-tick'), baselineName: 'stampede-before', b: perRound('stampede-before-busy-tick'), excluded: short(busy) ?? short(before) });
    compare({ part: 'metrics', paired: true, name: `/metrics server-side time per answer with ${n} listeners on air vs ${BEFORE_LABEL}`, unit: 'ms', better: 'lower', a: ownPerRound('stampede-busy'), baselineName: 'stampede-before', b: ownPerRound('stampede-before-busy'), excluded: short(busy) ?? short(before) });
  }
}

// ───────────────────────────── replay engine ─────────────────────────────

async function partReplay(): Promise<void> {
  const run = async (scale: number) => {
    const p = spawnProc('replay-child', [], PIN.server);
    try {
      return await p.call<{ ms: number; maxRssMiB: number; peak: number }>('run', { scale });
    } finally {
      await p.stop();
    }
  };
  const small: { ms: number; maxRssMiB: number; peak: number }[] = [];
  const big: typeof small = [];
  for (let r = 0; r < CFG.replayRounds; r++) {
    small.push(await run(1));
    big.push(await run(10));
  }
  raw.replay = { small, big };
  const peak = (xs: typeof small) => `${(xs[0]!.peak / 1e6).toFixed(1)}M`;
  compare({ part: 'replay', name: `--speed max, whole night, peak ${peak(big)} vs ${peak(small)} listeners: time`, unit: 'ms', better: 'lower', a: big.map((x) => x.ms), baselineName: `${peak(small)} crowd`, b: small.map((x) => x.ms) });
  against({ part: 'replay', name: `--speed max, whole night at ${peak(small)} listeners: time`, unit: 'ms', better: 'lower', a: small.map((x) => x.ms), limit: 2000, limitName: 'target 2,000 ms' });
}

// ───────────────────────────── main ─────────────────────────────

async function main(): Promise<void> {
  pinSelf(PIN.client);
  const load0 = loadavg();
  const t0 = Date.now();
  if (CFG.parts.includes('fanout')) await partFanout();
  if (CFG.parts.includes('join')) await partJoin();
  if (CFG.parts.includes('overload')) await partOverload();
  if (CFG.parts.includes('metrics')) await partMetrics();
  if (CFG.parts.includes('replay')) await partReplay();
  // a part that cannot run here says why, in the log and in the results
  const skipped: { part: string; reason: string }[] = [];
  if (CFG.parts.includes('cluster')) {
    const reason = await partCluster({ env, pin: PIN, random: rng.next, log, compare, raw });
    if (reason) skipped.push({ part: 'cluster', reason });
  }
  if (CFG.parts.includes('workers')) await partWorkers({ env, pin: PIN, random: rng.next, log, compare, raw });
  const dir = env.BENCH_OUT ? `${env.BENCH_OUT.replace(/\/$/, '')}/` : fileURLToPath(new URL('../../bench/results/', import.meta.url));
  await mkdir(dir, { recursive: true });
  const meta = { date: new Date().toISOString(), node: process.version, cpus: cpus().length, cpuModel: cpus()[0]?.model ?? '', pinning: PIN, loadAverage: { before: load0, after: loadavg() }, minutes: Math.round((Date.now() - t0) / 600) / 100, skipped, config: CFG };
  const write = (name: string, text: string) => writeAtomic(`${dir}${name}`, text);
  await write('latest.json', `${JSON.stringify({ ...meta, entries, raw }, null, 1)}\n`);
  const md = renderMarkdown(meta, entries, raw);
  await write('latest.md', md);
  if (raw.overload) await write('overload.svg', overloadSvg(raw.overload as OverloadSeries));
  if (raw.overloadBudget) await write('overload-budget.svg', overloadSvg(raw.overloadBudget as OverloadSeries));
  log(`\n${md}\nwritten: ${dir}latest.json, latest.md${raw.overload ? ', overload.svg' : ''}${raw.overloadBudget ? ', overload-budget.svg' : ''} (${meta.minutes} min)`);
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
