import { OPEN_GATE, ReplayTimeline, type JoinGate, type ReplayView, type TimelineBody, type TimelineMeta } from '../server/index.js';
import type { SharedFault } from '../protocol/index.js';
import type { RealLoad, ReplayStep, SimPhase } from '../sim/index.js';
import type { Space } from '../space/index.js';

export interface ReplayFeedOptions {
  scenarioName: string;
  scheduledStartMs: number;
  speed: number | 'max';
  /** The scenario's `event.timeZone`: pages print the simulated clock in it. */
  timeZone: string;
  /** What the dashboard's charts span and the facts they draw; no timeline without it. */
  timeline?: TimelineMeta;
  /** Capture → receipt delay of audio at the real clients since the last call (ms), or null with none. */
  realAudioDelay?: () => { p50: number; p99: number } | null;
  /** Simulated time per dashboard sample; 10 s by default (1,140 samples for the night). */
  sampleMs?: number;
}

/** One dashboard sample being summed up over its simulated seconds. */
interface Sample {
  from: number;
  steps: number;
  attempts: number;
  failures: number;
  offered: number;
  admitted: number;
  attack: number;
  p50: number;
  p99: number;
  realAttempts: number;
  realAdmitted: number;
}

const emptySample = (from: number): Sample => ({ from, steps: 0, attempts: 0, failures: 0, offered: 0, admitted: 0, attack: 0, p50: 0, p99: 0, realAttempts: 0, realAdmitted: 0 });

/**
 * What the server reads about the replay (its `ReplayView`): the model's last step and the space it
 * plays in. Only the port writes here; the server is handed this object read-only.
 */
export class ReplayFeed implements ReplayView {
  private last: ReplayStep | null = null;
  private space: Space | null = null;
  private ended = false;
  /** Which room of the timeline each space plays (scenarios with several rooms). */
  private readonly roomOf = new Map<string, string>();
  private readonly timelineData: ReplayTimeline | null;
  private sample: Sample | null = null;
  private faults: readonly SharedFault[] = [];

  constructor(private readonly o: ReplayFeedOptions) {
    this.timelineData = o.timeline ? new ReplayTimeline(o.timeline) : null;
  }

  /** The space the replay plays in now: set when the port has created it, and again when a room reopens elsewhere. */
  playIn(space: Space, room?: string): void {
    this.space = space;
    if (room !== undefined) this.roomOf.set(space.id, room);
  }

  /** The scenario's audio faults the port has put in force now. */
  playFaults(faults: readonly SharedFault[]): void {
    this.faults = faults;
  }

  audioFaults(): readonly SharedFault[] {
    return this.faults;
  }

  /** The space the conversation is in now (where a listener thrown out by a crash should go). */
  currentSpaceId(): string | null {
    return this.space?.id ?? null;
  }

  record(step: ReplayStep): void {
    this.last = step;
    const tl = this.timelineData;
    if (!tl) return;
    for (const text of step.events) tl.event(step.t, text);
    const x = (this.sample ??= emptySample(step.t - 1000));
    x.steps++;
    x.attempts += step.attempts;
    x.failures += step.failures;
    x.offered += step.offered;
    x.admitted += step.admitted;
    x.attack += step.attack;
    x.p50 = Math.max(x.p50, step.latencyP50Ms);
    x.p99 = Math.max(x.p99, step.latencyP99Ms);
    if (step.t - x.from < (this.o.sampleMs ?? 10_000)) return;
    const audio = this.o.realAudioDelay?.() ?? null;
    tl.add({
      t: step.t,
      listeners: Math.round(step.listeners),
      real: this.space ? this.space.realListeners + this.space.peers.real : 0,
      availability: x.attempts > 0 ? 1 - x.failures / x.attempts : 1,
      realAvailability: x.realAttempts > 0 ? x.realAdmitted / x.realAttempts : null,
      offered: x.offered / x.steps,
      admitted: x.admitted / x.steps,
      attack: x.attack / x.steps,
      p50: x.p50,
      p99: x.p99,
      audioP50: audio ? audio.p50 : null,
      audioP99: audio ? audio.p99 : null,
    });
    this.sample = emptySample(step.t);
  }

  /** Real clients' joins since the last call, for the dashboard's real availability. */
  recordReal(load: RealLoad): void {
    const x = (this.sample ??= emptySample(this.last?.t ?? 0));
    x.realAttempts += load.attempts;
    x.realAdmitted += load.admitted;
  }

  timeline(since: number): TimelineBody | null {
    return this.timelineData?.since(since) ?? null;
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

  simTimeZone(): string {
    return this.o.timeZone;
  }

  modelledListeners(spaceId: string): number {
    const s = this.last;
    if (!s) return 0;
    const room = this.roomOf.get(spaceId);
    if (s.rooms && room !== undefined) return Math.round(s.rooms.find((r) => r.name === room)?.listeners ?? 0);
    return this.space?.id === spaceId ? Math.round(s.listeners) : 0;
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
      timeZone: this.o.timeZone,
      phase,
      listeners: { virtual: this.modelledListeners(space.id), real: space.realListeners + space.peers.real },
      availability: s?.availability ?? 1,
      offered: s?.offered ?? 0,
      admitted: s?.admitted ?? 0,
      latencyP99Ms: s?.latencyP99Ms ?? 0,
    };
  }
}
