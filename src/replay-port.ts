import { readFile } from 'node:fs/promises';
import type { ServerMetrics, SimPhase } from './metrics/index.js';
import { SIM_PHASES } from './metrics/index.js';
import type { LiveServer } from './server/index.js';
import type { ReplayPort, ReplayStep, RealLoad } from './sim/port.js';
import type { Space } from './space/index.js';

export interface LivePortOptions {
  server: LiveServer;
  metrics: ServerMetrics;
  title: string;
  hostName: string;
  scheduledStartMs: number;
  scenarioName: string;
  speed: number | 'max';
}

/**
 * The replay port over a running server: the model's verdicts gate real joins, its crowd counts as
 * `kind="virtual"` everywhere the server publishes listeners, and real joins flow back into the model.
 */
export class LiveReplayPort implements ReplayPort {
  readonly space: Space;
  private last: ReplayStep | null = null;
  /** The fractions of a join the model's flows leave over, until they add up to a whole one. */
  private readonly carry = { admitted: 0, failed: 0 };

  constructor(private readonly o: LivePortOptions) {
    this.space = o.server.createSpace({ title: o.title, hostName: o.hostName, scheduledStart: o.scheduledStartMs }).space;
    o.metrics.simSpeed.set(o.speed === 'max' ? 0 : o.speed);
    this.info('pre_open', o.scheduledStartMs);
  }

  private info(phase: SimPhase, simMs: number): void {
    const s = this.last;
    this.o.server.replayInfo = {
      running: phase !== 'ended',
      scenario: this.o.scenarioName,
      spaceId: this.space.id,
      speed: this.o.speed,
      simTime: new Date(simMs).toISOString(),
      phase,
      listeners: { virtual: this.space.virtualListeners, real: this.space.realListeners },
      availability: s?.availability ?? 1,
      offered: s?.offered ?? 0,
      admitted: s?.admitted ?? 0,
      latencyP99Ms: s?.latencyP99Ms ?? 0,
    };
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
    const { metrics, server } = this.o;
    this.last = step;
    this.space.virtualListeners = Math.round(step.listeners);
    server.setJoinGate({ availability: step.availability, latencyMs: step.latencyP50Ms });
    server.setSimTime(new Date(step.t).toISOString());
    metrics.simTime.set(step.t / 1000);
    for (const p of SIM_PHASES) metrics.simPhase.set({ phase: p }, p === step.phase ? 1 : 0);
    metrics.simOffered.set(step.offered);
    metrics.simAdmitted.set(step.admitted);
    metrics.simAttack.set(step.attack);
    metrics.simAvailability.set(step.availability);
    metrics.simLatencyP50.set(step.latencyP50Ms / 1000);
    metrics.simLatencyP99.set(step.latencyP99Ms / 1000);
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
    this.info(step.phase, step.t);
  }

  takeRealLoad(): RealLoad {
    const c = this.o.server.takeJoinCounters();
    return { attempts: c.attempts, admitted: c.admitted, listeners: this.space.realListeners };
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
    if (this.last) this.info('ended', this.last.t);
  }
}
