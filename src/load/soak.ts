import { nextSlot, type Clock } from '../clock.js';
import { http, scrape } from './probe.js';
import { assertLoopback } from './profile.js';
import { Swarm } from './swarm.js';

/**
 * A bounded soak (docs/reliability.md #15, `npm run soak`): steady listeners, churning listeners and
 * one reconnect storm against a live space with audio, while the server's own /metrics is sampled.
 * It passes when the heap and RSS slopes are flat, open file descriptors come back to their baseline
 * once everyone has left, and the event loop's p99 delay stays under the limit.
 */
export interface SoakOptions {
  base: URL;
  /** The operator token, to create the space the soak runs in. */
  token?: string;
  /** Seconds the crowd is on (steady + churn + the storm part way through). */
  seconds: number;
  /** Listeners that stay the whole time. */
  steady: number;
  /** New listeners a second, each staying `churnHoldS` seconds. */
  churnPerSecond: number;
  churnHoldS: number;
  /** Listeners dropped together once, `stormAtS` seconds in, coming straight back. */
  storm: number;
  stormAtS: number;
  sampleMs: number;
  /** Pass limits. */
  maxHeapSlopeMiBPerMin: number;
  maxRssSlopeMiBPerMin: number;
  maxLoopLagP99Ms: number;
  /** Open files the server may hold above its baseline once everyone has left. */
  fdSlack: number;
  clock: Clock;
  random: () => number;
  onSample?: (s: SoakSample) => void;
}

export interface SoakSample {
  t: number;
  heapMiB: number;
  rssMiB: number;
  fds: number;
  loopP99Ms: number;
  connections: number;
}

export interface SoakResult {
  seconds: number;
  samples: number;
  /** Least-squares slope of the heap's per-window minimum (its level after collections), MiB/min. */
  heapSlopeMiBPerMin: number;
  /** Least-squares slope of RSS, MiB/min. */
  rssSlopeMiBPerMin: number;
  heapStartMiB: number;
  heapEndMiB: number;
  rssStartMiB: number;
  rssEndMiB: number;
  /** Highest p99 event-loop delay of any sampling interval, ms. */
  loopLagP99MaxMs: number;
  fdBaseline: number;
  fdPeak: number;
  fdAfter: number;
  peakConnections: number;
  joins: { attempts: number; admitted: number };
  audioChunks: number;
  checks: { check: string; pass: boolean; actual: number; limit: number }[];
  pass: boolean;
}

export const SOAK_DEFAULTS = {
  seconds: 120,
  steady: 300,
  churnPerSecond: 20,
  churnHoldS: 5,
  storm: 300,
  stormAtS: 60,
  sampleMs: 1_000,
  maxHeapSlopeMiBPerMin: 3,
  maxRssSlopeMiBPerMin: 5,
  maxLoopLagP99Ms: 100,
  fdSlack: 5,
};

/** Least-squares slope of y over x. */
export function slope(xs: readonly number[], ys: readonly number[]): number {
  const n = xs.length;
  if (n < 2) return 0;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let num = 0;
  let den = 0;
  for (let i = 0; i < n; i++) {
    num += (xs[i]! - mx) * (ys[i]! - my);
    den += (xs[i]! - mx) ** 2;
  }
  return den === 0 ? 0 : num / den;
}

/** The minimum of each run of `k` samples, at the time of that run's middle sample. */
export function windowMinima(ts: readonly number[], ys: readonly number[], k: number): { t: number[]; y: number[] } {
  const t: number[] = [];
  const y: number[] = [];
  for (let i = 0; i + k <= ys.length; i += k) {
    t.push(ts[i + Math.floor(k / 2)]!);
    y.push(Math.min(...ys.slice(i, i + k)));
  }
  return { t, y };
}

const MiB = 2 ** 20;
const round = (n: number, d = 2): number => Math.round(n * 10 ** d) / 10 ** d;

async function sample(base: URL, t: number): Promise<SoakSample> {
  const m = await scrape(base);
  return {
    t,
    heapMiB: (m.get('nodejs_heap_size_used_bytes') ?? 0) / MiB,
    rssMiB: (m.get('process_resident_memory_bytes') ?? 0) / MiB,
    fds: m.get('process_open_fds') ?? 0,
    loopP99Ms: (m.get('nodejs_eventloop_lag_p99_seconds') ?? 0) * 1000,
    connections: m.get('stampede_ws_connections') ?? 0,
  };
}

export async function runSoak(o: SoakOptions): Promise<SoakResult> {
  const base = assertLoopback(o.base.href);
  const auth: Record<string, string> = o.token ? { authorization: `Bearer ${o.token}` } : {};
  const c = await http(base, 'POST', '/api/v1/spaces', { body: { title: 'soak', scheduledStart: new Date().toISOString() }, headers: auth });
  if (c.status !== 201) throw new Error(`creating the soak's space: ${c.status} ${c.text.slice(0, 200)}`);
  const { space, hostToken } = c.body as { space: { id: string }; hostToken: string };
  const st = await http(base, 'POST', `/api/v1/spaces/${space.id}/start`, { body: { syntheticHost: true }, headers: { authorization: `Bearer ${hostToken}` } });
  if (st.status !== 200) throw new Error(`starting the soak's space: ${st.status} ${st.text.slice(0, 200)}`);

  // the baseline: the server with its space on air and no one listening
  await sample(base, 0); // resets the loop-delay histogram
  const before = await sample(base, 0);
  const swarm = (arrivalsMs: number[], extra: { holdMs?: number; dropAfterMs?: number; reconnect?: 'jitter' | 'storm' }): Swarm =>
    new Swarm({
      base,
      spaceId: space.id,
      arrivalsMs,
      maxListeners: arrivalsMs.length,
      holdMs: extra.holdMs ?? 0,
      reconnect: extra.reconnect ?? 'jitter',
      backoffBaseMs: 250,
      backoffCapMs: 2_000,
      reactionsPerMinute: 2,
      dropAfterMs: extra.dropAfterMs ?? 0,
      timeoutMs: 10_000,
      clock: o.clock,
      random: o.random,
    });
  const spread = (n: number, overMs: number, fromMs = 0): number[] => Array.from({ length: n }, (_, i) => fromMs + (i * overMs) / Math.max(1, n));
  const churnN = Math.floor(o.churnPerSecond * Math.max(0, o.seconds - o.churnHoldS));
  const swarms = [
    swarm(spread(o.steady, 2_000), {}),
    swarm(spread(churnN, (o.seconds - o.churnHoldS) * 1000, 1_000), { holdMs: o.churnHoldS * 1000 }),
    // everyone in within a second, then dropped together (each after its own stay) and straight back
    swarm(spread(o.storm, 1_000), { dropAfterMs: o.stormAtS * 1000, reconnect: 'storm' }),
  ];
  const t0 = o.clock.now();
  for (const s of swarms) s.start();
  const samples: SoakSample[] = [];
  // a sample reads the server as it is now: the samples a stall made it miss are skipped, not taken back to back
  for (let k = 1; o.clock.now() - t0 < o.seconds * 1000; k = nextSlot(t0, o.sampleMs, k, o.clock.now())) {
    await o.clock.sleep(t0 + k * o.sampleMs - o.clock.now());
    const s = await sample(base, (o.clock.now() - t0) / 1000);
    samples.push(s);
    o.onSample?.(s);
  }
  await Promise.all(swarms.map((s) => s.stop()));
  // everyone has left: wait (bounded) for the server to let go of their sockets
  let after = await sample(base, (o.clock.now() - t0) / 1000);
  for (let i = 0; i < 50 && (after.connections > 0 || after.fds > before.fds + o.fdSlack); i++) {
    await o.clock.sleep(200);
    after = await sample(base, (o.clock.now() - t0) / 1000);
  }

  // slopes over the part after the warm-up (the first quarter, at least 10 s: pools and buffers fill)
  const settled = samples.filter((s) => s.t >= Math.max(10, o.seconds / 4));
  const ts = settled.map((s) => s.t / 60);
  const minima = windowMinima(ts, settled.map((s) => s.heapMiB), Math.max(2, Math.round(5_000 / o.sampleMs)));
  const heapSlope = slope(minima.t, minima.y);
  const rssSlope = slope(ts, settled.map((s) => s.rssMiB));
  const lagMax = Math.max(0, ...samples.map((s) => s.loopP99Ms));
  const checks = [
    { check: 'heap slope (MiB/min)', actual: round(heapSlope), limit: o.maxHeapSlopeMiBPerMin, pass: heapSlope <= o.maxHeapSlopeMiBPerMin },
    { check: 'RSS slope (MiB/min)', actual: round(rssSlope), limit: o.maxRssSlopeMiBPerMin, pass: rssSlope <= o.maxRssSlopeMiBPerMin },
    { check: 'open files above baseline after', actual: after.fds - before.fds, limit: o.fdSlack, pass: after.fds - before.fds <= o.fdSlack },
    { check: 'event-loop p99 (ms), worst interval', actual: round(lagMax, 1), limit: o.maxLoopLagP99Ms, pass: lagMax < o.maxLoopLagP99Ms },
    { check: 'connections after', actual: after.connections, limit: 0, pass: after.connections === 0 },
  ];
  return {
    seconds: round((o.clock.now() - t0) / 1000, 1),
    samples: samples.length,
    heapSlopeMiBPerMin: round(heapSlope),
    rssSlopeMiBPerMin: round(rssSlope),
    heapStartMiB: round(settled[0]?.heapMiB ?? 0, 1),
    heapEndMiB: round(settled.at(-1)?.heapMiB ?? 0, 1),
    rssStartMiB: round(settled[0]?.rssMiB ?? 0, 1),
    rssEndMiB: round(settled.at(-1)?.rssMiB ?? 0, 1),
    loopLagP99MaxMs: round(lagMax, 1),
    fdBaseline: before.fds,
    fdPeak: Math.max(...samples.map((s) => s.fds)),
    fdAfter: after.fds,
    peakConnections: Math.max(0, ...samples.map((s) => s.connections)),
    joins: { attempts: swarms.reduce((a, s) => a + s.attempts, 0), admitted: swarms.reduce((a, s) => a + s.admitted, 0) },
    audioChunks: swarms.reduce((a, s) => a + s.chunks, 0),
    checks,
    pass: checks.every((c) => c.pass),
  };
}

export function formatSoak(r: SoakResult): string {
  const lines = [
    `soak: ${r.seconds} s, ${r.samples} samples, peak ${r.peakConnections} connections, ${r.joins.admitted}/${r.joins.attempts} joins admitted, ${r.audioChunks} audio chunks heard`,
    `  heap ${r.heapStartMiB} → ${r.heapEndMiB} MiB, RSS ${r.rssStartMiB} → ${r.rssEndMiB} MiB, open files ${r.fdBaseline} → peak ${r.fdPeak} → ${r.fdAfter}`,
  ];
  for (const c of r.checks) lines.push(`  ${c.pass ? 'PASS' : 'FAIL'}  ${c.check}: ${c.actual} (limit ${c.limit})`);
  return lines.join('\n');
}
