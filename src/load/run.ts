import type { Clock } from '../clock.js';
import { runHttp } from './http.js';
import { assertLoopback, profileSeconds, truncatePhases, type LoadProfile } from './profile.js';
import { createClientMetrics, evaluateThresholds, KindStats, summarize, type ClientKind, type ClientMetrics, type KindSummary, type ThresholdResult } from './results.js';
import { arrivalTimes, Swarm } from './swarm.js';

export interface LoadOptions {
  profile: LoadProfile;
  /** Base URL of the server under test (loopback only). */
  target: string;
  /** The space to load; default: the first live space the server lists. */
  spaceId?: string;
  /** Cut the profile to at most this many seconds. */
  durationS?: number;
  clock: Clock;
  random: () => number;
  metrics?: ClientMetrics;
  onProgress?: (p: LoadProgress) => void;
  signal?: AbortSignal;
}

export interface LoadProgress {
  elapsedS: number;
  totalS: number;
  requests: number;
  ok: number;
  connected?: number;
}

export interface LoadResult {
  profile: string;
  kind: LoadProfile['kind'];
  target: string;
  spaceId: string;
  seconds: number;
  kinds: KindSummary[];
  /** WebSocket profiles: close codes seen, audio chunks received and missed. */
  ws?: { closes: Record<string, number>; chunks: number; gaps: number; peakConnected: number; cutShort: number; joinsAbandoned: number };
  thresholds: ThresholdResult[];
  pass: boolean;
}

/** Finds the space to load: the given id, or the first live (then scheduled) space the server lists. */
export async function resolveSpace(base: URL, spaceId?: string): Promise<string> {
  if (spaceId) return spaceId;
  const res = await fetch(new URL('/api/v1/spaces', base));
  if (!res.ok) throw new Error(`${base.origin}/api/v1/spaces answered ${res.status}; is it a Stampede server?`);
  const { spaces } = (await res.json()) as { spaces: { id: string; state: string }[] };
  const s = spaces.find((x) => x.state === 'live') ?? spaces.find((x) => x.state === 'scheduled');
  if (!s) throw new Error(`no live or scheduled space on ${base.origin}; create one or pass --space`);
  return s.id;
}

/** Runs one load profile against a server and scores it against its thresholds. */
export async function runLoad(o: LoadOptions): Promise<LoadResult> {
  const base = assertLoopback(o.target);
  const profile = o.durationS ? { ...o.profile, phases: truncatePhases(o.profile.phases, o.durationS) } : o.profile;
  const spaceId = await resolveSpace(base, o.spaceId);
  const metrics = o.metrics ?? createClientMetrics();
  const total = profileSeconds(profile);
  const t0 = o.clock.now();
  let kinds: KindSummary[];
  let ws: LoadResult['ws'];
  if (profile.kind === 'http') {
    const stats = new KindStats(profile.request as ClientKind);
    await runHttp(profile, { base, spaceId }, stats, metrics, {
      sleep: (ms, signal) => o.clock.sleep(ms, signal),
      ...(o.signal ? { signal: o.signal } : {}),
      onStep: (elapsedS, totalS) => o.onProgress?.({ elapsedS, totalS, requests: stats.ok + Object.values(stats.refused).reduce((a, b) => a + b, 0), ok: stats.ok }),
    });
    kinds = [summarize(stats, (o.clock.now() - t0) / 1000)];
  } else {
    const swarm = new Swarm({
      base,
      spaceId,
      arrivalsMs: arrivalTimes(profile.phases, 100_000),
      maxListeners: profile.maxListeners,
      holdMs: profile.holdSeconds * 1000,
      reconnect: profile.reconnect,
      backoffBaseMs: profile.backoffBaseMs,
      backoffCapMs: profile.backoffCapMs,
      reactionsPerMinute: profile.reactionsPerMinute,
      dropAfterMs: profile.dropAfterSeconds * 1000,
      timeoutMs: profile.timeoutMs,
      clock: o.clock,
      random: o.random,
      metrics,
    });
    swarm.start();
    let peak = 0;
    const abort = new AbortController();
    const onAbort = (): void => abort.abort();
    o.signal?.addEventListener('abort', onAbort, { once: true });
    for (let s = 1; s <= Math.ceil(total) && !abort.signal.aborted; s++) {
      await o.clock.sleep(t0 + s * 1000 - o.clock.now(), abort.signal);
      peak = Math.max(peak, swarm.connected);
      o.onProgress?.({ elapsedS: s, totalS: total, requests: swarm.attempts, ok: swarm.admitted, connected: swarm.connected });
    }
    o.signal?.removeEventListener('abort', onAbort);
    await swarm.stop();
    const seconds = (o.clock.now() - t0) / 1000;
    kinds = [summarize(swarm.join, seconds), summarize(swarm.connect, seconds), summarize(swarm.audio, seconds)];
    ws = { closes: swarm.closes, chunks: swarm.chunks, gaps: swarm.gaps, peakConnected: peak, cutShort: swarm.cutShort, joinsAbandoned: swarm.joinsAbandoned };
  }
  const thresholds = evaluateThresholds(kinds, profile.thresholds);
  return {
    profile: profile.name,
    kind: profile.kind,
    target: base.origin,
    spaceId,
    seconds: Math.round(((o.clock.now() - t0) / 1000) * 10) / 10,
    kinds,
    ...(ws ? { ws } : {}),
    thresholds,
    pass: thresholds.every((t) => t.pass),
  };
}

export function formatSummary(r: LoadResult): string {
  const lines = [`${r.profile} against ${r.target} for ${r.seconds} s`];
  lines.push('  kind        requests   ok       avail    rps      p50 ms   p90 ms   p99 ms   p99.9 ms  max ms   refused / errors');
  for (const k of r.kinds) {
    if (k.requests === 0) continue;
    const bad = [...Object.entries(k.refused).map(([c, n]) => `${c}×${n}`), ...Object.entries(k.errors).map(([c, n]) => `${c}×${n}`), ...(k.timeouts ? [`timeout×${k.timeouts}`] : [])].join(' ');
    lines.push(`  ${k.kind.padEnd(11)} ${String(k.requests).padEnd(10)} ${String(k.ok).padEnd(8)} ${(k.availability * 100).toFixed(1).padStart(5)}%   ${String(k.rps).padEnd(8)} ${String(k.p50).padEnd(8)} ${String(k.p90).padEnd(8)} ${String(k.p99).padEnd(8)} ${String(k.p999).padEnd(9)} ${String(k.max).padEnd(8)} ${bad}`);
  }
  if (r.ws) lines.push(`  listeners: peak ${r.ws.peakConnected} connected, ${r.ws.chunks} audio chunks, ${r.ws.gaps} missed; ${r.ws.cutShort} sockets and ${r.ws.joinsAbandoned} joins still open at the end; closes ${JSON.stringify(r.ws.closes)}`);
  for (const t of r.thresholds) lines.push(`  ${t.pass ? 'PASS' : 'FAIL'}  ${t.threshold} (actual ${t.actual ?? 'no data'})`);
  return lines.join('\n');
}
