import { readFile } from 'node:fs/promises';
import { SIM_PHASES, simEventKind, type ServerMetrics, type SimPhase as PhaseLabel } from '../metrics/index.js';
import { OPEN_GATE, type JoinCounters, type JoinGate, type LiveServer, type ReplayView } from '../server/index.js';
import type { ReplayPort, ReplayStep, RealLoad, SimPhase } from '../sim/index.js';
import type { Space } from '../space/index.js';

// the model's phases and the gauge's closed label set are one list: this stops compiling if they drift
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const phasesAgree: Same<SimPhase, PhaseLabel> = true;
void phasesAgree;

export interface ReplayFeedOptions {
  scenarioName: string;
  scheduledStartMs: number;
  speed: number | 'max';
}

/**
 * What the server reads about the replay (its `ReplayView`): the model's last step and the space it
 * plays in. Only the port writes here; the server is handed this object read-only.
 */
export class ReplayFeed implements ReplayView {
  private last: ReplayStep | null = null;
  private space: Space | null = null;
  private ended = false;

  constructor(private readonly o: ReplayFeedOptions) {}

  /** The space the replay plays in; set once, when the port has created it. */
  playIn(space: Space): void {
    this.space = space;
  }

  record(step: ReplayStep): void {
    this.last = step;
  }

  finish(): void {
    this.ended = true;
  }

  joinGate(): JoinGate {
    const s = this.last;
    return s ? { availability: s.availability, latencyMs: s.latencyP50Ms } : OPEN_GATE;
  }

  simTime(): string | null {
    return this.last ? new Date(this.last.t).toISOString() : null;
  }

  modelledListeners(spaceId: string): number {
    return this.last && this.space?.id === spaceId ? Math.round(this.last.listeners) : 0;
  }

  status(): Record<string, unknown> {
    const space = this.space;
    if (!space) return { running: false };
    const s = this.last;
    const phase: SimPhase = this.ended && s ? 'ended' : (s?.phase ?? 'pre_open');
    return {
      running: phase !== 'ended',
      scenario: this.o.scenarioName,
      spaceId: space.id,
      speed: this.o.speed,
      simTime: new Date(s?.t ?? this.o.scheduledStartMs).toISOString(),
      phase,
      listeners: { virtual: this.modelledListeners(space.id), real: space.realListeners },
      availability: s?.availability ?? 1,
      offered: s?.offered ?? 0,
      admitted: s?.admitted ?? 0,
      latencyP99Ms: s?.latencyP99Ms ?? 0,
    };
  }
}

export interface LivePortOptions {
  server: LiveServer;
  metrics: ServerMetrics;
  /** The view the server was built with; the port keeps it up to date. */
  feed: ReplayFeed;
  title: string;
  hostName: string;
  scheduledStartMs: number;
  speed: number | 'max';
}

/**
 * The replay port over a running server: the model's verdicts gate real joins (through the feed the
 * server reads), its crowd counts as `kind="virtual"` everywhere the server publishes listeners, and
 * real joins flow back into the model.
 */
export class LiveReplayPort implements ReplayPort {
  readonly space: Space;
  /** The fractions of a join the model's flows leave over, until they add up to a whole one. */
  private readonly carry = { admitted: 0, failed: 0 };
  /** The server's join totals at the last call of takeRealLoad. */
  private seen: JoinCounters;

  constructor(private readonly o: LivePortOptions) {
    this.space = o.server.createSpace({ title: o.title, hostName: o.hostName, scheduledStart: o.scheduledStartMs }).space;
    o.feed.playIn(this.space);
    o.metrics.simSpeed.set(o.speed === 'max' ? 0 : o.speed);
    this.seen = o.server.joinTotals();
  }

  openSpace(): void {
    // the space already exists (scheduled); opening lets the crowd in before the host starts
  }

  async startSpace(): Promise<void> {
    if (this.space.state === 'scheduled') await this.o.server.startSpace(this.space, { syntheticHost: true });
  }

  async endSpace(): Promise<void> {
    // a space that never went live is not ended: there is nothing on air to end (409 over HTTP)
    if (this.space.state === 'live') await this.o.server.endSpace(this.space);
  }

  publish(step: ReplayStep): void {
    const { metrics, feed } = this.o;
    feed.record(step);
    metrics.simTime.set(step.t / 1000);
    for (const p of SIM_PHASES) metrics.simPhase.set({ phase: p }, p === step.phase ? 1 : 0);
    metrics.simOffered.set(step.offered);
    metrics.simAdmitted.set(step.admitted);
    metrics.simAttack.set(step.attack);
    metrics.simAvailability.set(step.availability);
    metrics.simLatencyP50.set(step.latencyP50Ms / 1000);
    metrics.simLatencyP99.set(step.latencyP99Ms / 1000);
    for (const text of step.events) {
      const event = simEventKind(text);
      if (event) metrics.simEvents.inc({ event });
    }
    // the model's flows are fractional; the counters count whole joins and carry the remainder
    this.carry.admitted += Math.max(0, step.attempts - step.failures);
    this.carry.failed += step.failures;
    for (const outcome of ['admitted', 'failed'] as const) {
      const whole = Math.floor(this.carry[outcome]);
      if (whole > 0) {
        metrics.joinAttempts.inc({ kind: 'virtual', outcome }, whole);
        this.carry[outcome] -= whole;
      }
    }
  }

  takeRealLoad(): RealLoad {
    const now = this.o.server.joinTotals();
    const load = { attempts: now.attempts - this.seen.attempts, admitted: now.admitted - this.seen.admitted, listeners: this.space.realListeners };
    this.seen = now;
    return load;
  }

  /** The recording is published and holds every chunk the space accepted, in order. */
  async recordingAvailable(): Promise<boolean> {
    const path = this.o.server.recordingPath(this.space.id);
    if (!path) return false;
    const file = await readFile(path);
    let n = 0;
    for (let o = 0; o + 4 <= file.length; n++) {
      const len = file.readUInt32BE(o);
      if (file.readUInt32BE(o + 8) !== n) return false; // the chunk's sequence number: 4 (length prefix) + 4 (header offset)
      o += 4 + len;
    }
    return n === this.space.chunks && n > 0;
  }

  finish(): void {
    this.o.metrics.simSpeed.set(0);
    this.o.feed.finish();
  }
}
