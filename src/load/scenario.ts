import { nextSlot, type Clock } from '../clock.js';
import { runHttp } from './http.js';
import { isCrowd, profileSeconds, type LoadProfile } from './profile.js';
import { KindStats, type ClientKind, type ClientMetrics } from './results.js';
import { arrivalTimes, Swarm } from './swarm.js';
import { judge, parseThreshold, type Threshold, type ThresholdResult } from './thresholds.js';

/** What a WebSocket scenario's listeners did: close codes seen, audio chunks received and missed. */
export interface SwarmCounts {
  attempts: number;
  admitted: number;
  connected: number;
  chunks: number;
  gaps: number;
  cutShort: number;
  joinsAbandoned: number;
  closes: Record<string, number>;
}

export interface WsSummary {
  closes: Record<string, number>;
  chunks: number;
  gaps: number;
  peakConnected: number;
  cutShort: number;
  joinsAbandoned: number;
}

export function swarmCounts(s: Swarm): SwarmCounts {
  return { attempts: s.attempts, admitted: s.admitted, connected: s.connected, chunks: s.chunks, gaps: s.gaps, cutShort: s.cutShort, joinsAbandoned: s.joinsAbandoned, closes: { ...s.closes } };
}

function addCounts(parts: readonly SwarmCounts[]): SwarmCounts {
  const total: SwarmCounts = { attempts: 0, admitted: 0, connected: 0, chunks: 0, gaps: 0, cutShort: 0, joinsAbandoned: 0, closes: {} };
  for (const p of parts) {
    for (const k of ['attempts', 'admitted', 'connected', 'chunks', 'gaps', 'cutShort', 'joinsAbandoned'] as const) total[k] += p[k];
    for (const [code, n] of Object.entries(p.closes)) total.closes[code] = (total.closes[code] ?? 0) + n;
  }
  return total;
}

/**
 * One scenario while it runs: its tallies (live), and what it adds to the result. It runs here (its
 * swarm or autocannon in this process) or in load workers, which report their parts (`absorb`).
 */
export class ScenarioRun {
  readonly stats: KindStats[];
  readonly thresholds: Threshold[];
  swarm: Swarm | null = null;
  /** With load workers: each worker's last report of its share of the listeners. */
  private readonly parts = new Map<number, SwarmCounts>();
  peak = 0;
  seconds = 0;

  constructor(readonly profile: LoadProfile) {
    this.stats = profile.kind === 'http' ? [new KindStats(profile.request as ClientKind)] : [new KindStats('join'), new KindStats('ws_connect'), new KindStats('audio')];
    this.thresholds = profile.thresholds.map(parseThreshold);
  }

  /** A worker's report of its share of the listeners; the peak is the largest sum of the workers' latest reports. */
  report(worker: number, counts: SwarmCounts): void {
    this.parts.set(worker, counts);
    this.peak = Math.max(this.peak, addCounts([...this.parts.values()]).connected);
  }

  /** Each worker's last report of its share of the listeners, in worker order (none when the swarm ran here). */
  workerCounts(): SwarmCounts[] {
    return [...this.parts.entries()].sort(([a], [b]) => a - b).map(([, c]) => c);
  }

  /** The listeners' counts so far: this process's swarm, or the workers' shares added up; null for HTTP. */
  swarmCounts(): SwarmCounts | null {
    if (this.swarm) return swarmCounts(this.swarm);
    return this.parts.size ? addCounts([...this.parts.values()]) : null;
  }

  ws(): WsSummary | undefined {
    const c = this.swarmCounts();
    return c ? { closes: c.closes, chunks: c.chunks, gaps: c.gaps, peakConnected: this.peak, cutShort: c.cutShort, joinsAbandoned: c.joinsAbandoned } : undefined;
  }

  /** Requests and successes so far (for the progress line). */
  counts(): { requests: number; ok: number; connected: number } {
    const c = this.swarmCounts();
    if (c) return { requests: c.attempts, ok: c.admitted, connected: c.connected };
    const s = this.stats[0]!;
    return { requests: s.requests, ok: s.ok, connected: 0 };
  }

  judge(elapsedS: number, only?: (t: Threshold) => boolean): ThresholdResult[] {
    const seconds = this.seconds || elapsedS;
    const measured = this.stats.map((s) => s.measured(seconds));
    return this.thresholds.filter(only ?? (() => true)).map((t) => judge(t, measured));
  }
}

export interface ScenarioContext {
  base: URL;
  spaceId: string;
  clock: Clock;
  random: () => number;
  metrics: ClientMetrics;
  signal: AbortSignal;
  /** When the run started (clock ms); a scenario starts its startTime after it. */
  t0: number;
  /** Where the conversation is now, for listeners whose space ended under them (`SwarmOptions.follow`); a replay's. */
  follow?: () => Promise<string | null>;
}

/** Runs one scenario in this process from its start time to its end (or the signal). */
export async function runScenario(r: ScenarioRun, ctx: ScenarioContext): Promise<void> {
  const { clock, signal } = ctx;
  const profile = r.profile;
  await clock.sleep(ctx.t0 + profile.startTime * 1000 - clock.now(), signal);
  if (signal.aborted) return;
  const started = clock.now();
  if (profile.kind === 'http') {
    await runHttp(profile, { base: ctx.base, spaceId: ctx.spaceId }, r.stats[0]!, ctx.metrics, { signal, sleep: (ms, s) => clock.sleep(ms, s) });
  } else {
    // a replay's crowd stays until the run is stopped
    const total = isCrowd(profile) ? Infinity : profileSeconds(profile);
    const closed = profile.executor === 'constant-vus';
    // a closed model: vus listeners from the start (spread over the first second), each back as soon as its hold ends
    const arrivalsMs = isCrowd(profile) ? profile.arrivalsMs : closed ? Array.from({ length: profile.vus! }, (_, i) => (i * 1000) / profile.vus!) : arrivalTimes(profile.phases, 100_000);
    const swarm = new Swarm({
      base: ctx.base,
      spaceId: ctx.spaceId,
      arrivalsMs,
      maxListeners: closed ? profile.vus! : profile.maxListeners,
      holdMs: profile.holdSeconds * 1000,
      loop: closed,
      reconnect: profile.reconnect,
      backoffBaseMs: profile.backoffBaseMs,
      backoffCapMs: profile.backoffCapMs,
      reactionsPerMinute: profile.reactionsPerMinute,
      dropAfterMs: profile.dropAfterSeconds * 1000,
      timeoutMs: profile.timeoutMs,
      clock,
      random: ctx.random,
      metrics: ctx.metrics,
      stats: { join: r.stats[0]!, connect: r.stats[1]!, audio: r.stats[2]! },
      ...(ctx.follow ? { follow: ctx.follow } : {}),
    });
    r.swarm = swarm;
    swarm.start();
    // the peak is read as the crowd is now: the seconds a stall made it miss are skipped, not read back to back
    for (let s = 1; s <= Math.ceil(total) && !signal.aborted; s = nextSlot(started, 1000, s, clock.now())) {
      await clock.sleep(started + s * 1000 - clock.now(), signal);
      r.peak = Math.max(r.peak, swarm.connected);
    }
    await swarm.stop();
  }
  r.seconds = (clock.now() - started) / 1000;
}

