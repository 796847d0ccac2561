import type { Clock } from '../clock.js';
import { createCrowdModel, SPACE_EVENTS, usesTimeline, type CrowdModel, type RoomSnapshot } from './model.js';
import type { RealLoad, ReplayPort, ReplayStep } from './port.js';
import { createRng } from './rng.js';
import type { Scenario } from './scenario.js';

export interface MinuteRow {
  t: number;
  listeners: number;
  realListeners: number;
  availability: number;
  realAvailability: number | null;
  offered: number;
  admitted: number;
  attack: number;
  /** The worst median and p99 join latency of the minute. */
  latencyP50Ms: number;
  latencyP99Ms: number;
  attempts: number;
  failures: number;
  realAttempts: number;
  realAdmitted: number;
  phase: ReplayStep['phase'];
  /** The highest listener count of any step in the minute (the row's `listeners` is the last). */
  maxListeners: number;
  /** Audio gaps, listener-weighted over the live seconds of the minute (only when the scenario has a timeline). */
  audioGapShare?: number;
  /** Listener-seconds in live rooms and the gapped part of them, for shares over any window. */
  liveListenerSeconds?: number;
  gapListenerSeconds?: number;
  rooms?: RoomMinute[];
}

export interface RoomMinute {
  name: string;
  phase: ReplayStep['phase'];
  listeners: number;
  maxListeners: number;
  audioGapShare: number;
  liveListenerSeconds: number;
  gapListenerSeconds: number;
}

/** A room's life over the whole replay. */
export interface RoomResult {
  name: string;
  host: string;
  account: string;
  openedAt: number | null;
  liveAt: number | null;
  endedAt: number | null;
  crashed: boolean;
  peakListeners: number;
  peakAt: number | null;
}

export interface ReplayResult {
  scenario: Scenario;
  seed: number;
  speed: number | 'max';
  liveAt: number | null;
  endedAt: number | null;
  openedAt: number | null;
  peakListeners: number;
  peakAt: number | null;
  series: MinuteRow[];
  events: { t: number; text: string }[];
  recordingAvailable: boolean | null;
  withServer: boolean;
  steps: number;
  footprint: number;
  /** Every room on the timeline, the event's own first. */
  rooms: RoomResult[];
  /** Did the scenario use rooms, crashes, room load or audio faults? (Reports add rooms and audio only then.) */
  timeline: boolean;
  /** At a numeric speed: how far behind its schedule the replay ran (null at 'max', which has none). */
  schedule: ScheduleLag | null;
  /** Why the recording is not available, when the server knows (e.g. another instance took the space over). */
  recordingProblem: string | null;
}

/**
 * How far a paced replay fell behind its schedule: a step is late when the next one is already due as it
 * ends (the machine was busy, or a step cost more than its period). A late replay runs its steps back to
 * back, yielding to the event loop between them, until it has caught up.
 */
export interface ScheduleLag {
  /** Steps after which the next one was already due. */
  lateSteps: number;
  /** The most wall time (of the injected clock) the replay was behind, ms. */
  maxBehindMs: number;
}

export interface RunReplayOptions {
  scenario: Scenario;
  seed: number;
  speed: number | 'max';
  clock: Clock;
  port?: ReplayPort;
  onStep?: (step: ReplayStep) => void;
  signal?: AbortSignal;
}

const NO_REAL: RealLoad = { attempts: 0, admitted: 0, listeners: 0 };

/** Collects a replay's steps into minute rows, events and peaks; shared by the live and the pure runner. */
class Recorder {
  readonly series: MinuteRow[] = [];
  readonly events: { t: number; text: string }[] = [];
  private row: MinuteRow | null = null;
  private peakListeners = 0;
  private peakAt: number | null = null;
  private readonly timeline: boolean;
  private readonly peaks: { n: number; at: number | null }[];
  steps = 0;

  constructor(
    private readonly scenario: Scenario,
    private readonly model: CrowdModel,
  ) {
    this.timeline = usesTimeline(scenario);
    this.peaks = model.roomSnapshots.map(() => ({ n: 0, at: null }));
  }

  record(s: ReplayStep, real: RealLoad): void {
    this.steps++;
    for (const text of s.events) this.events.push({ t: s.t, text });
    if (s.listeners > this.peakListeners) {
      this.peakListeners = s.listeners;
      this.peakAt = s.t;
    }
    s.rooms?.forEach((r, i) => {
      if (r.listeners > this.peaks[i]!.n) this.peaks[i] = { n: r.listeners, at: s.t };
    });
    const minute = Math.floor((s.t - 1) / 60_000) * 60_000 + 60_000;
    let row = this.row;
    if (!row || row.t !== minute) {
      if (row) this.series.push(finishRow(row));
      row = this.row = { t: minute, listeners: 0, realListeners: 0, availability: 1, realAvailability: null, offered: 0, admitted: 0, attack: 0, latencyP50Ms: 0, latencyP99Ms: 0, attempts: 0, failures: 0, realAttempts: 0, realAdmitted: 0, phase: s.phase, maxListeners: 0 };
      if (this.timeline) {
        row.liveListenerSeconds = 0;
        row.gapListenerSeconds = 0;
        row.rooms = this.model.roomSnapshots.map((r) => ({ name: r.name, phase: r.phase, listeners: 0, maxListeners: 0, audioGapShare: 0, liveListenerSeconds: 0, gapListenerSeconds: 0 }));
      }
    }
    row.maxListeners = Math.max(row.maxListeners, s.listeners);
    if (row.rooms && s.rooms) {
      for (let i = 0; i < s.rooms.length; i++) {
        const r = s.rooms[i]!;
        const m = row.rooms[i]!;
        m.phase = r.phase;
        m.listeners = r.listeners;
        m.maxListeners = Math.max(m.maxListeners, r.listeners);
        if (r.phase === 'live') {
          m.liveListenerSeconds += r.listeners;
          m.gapListenerSeconds += r.listeners * r.audioGap;
          row.liveListenerSeconds! += r.listeners;
          row.gapListenerSeconds! += r.listeners * r.audioGap;
        }
      }
    }
    row.listeners = s.listeners;
    row.realListeners = real.listeners;
    row.offered += s.offered;
    row.admitted += s.admitted;
    row.attack += s.attack;
    row.latencyP50Ms = Math.max(row.latencyP50Ms, s.latencyP50Ms);
    row.latencyP99Ms = Math.max(row.latencyP99Ms, s.latencyP99Ms);
    row.attempts += s.attempts;
    row.failures += s.failures;
    row.realAttempts += real.attempts;
    row.realAdmitted += real.admitted;
    row.phase = s.phase;
  }

  result(o: { seed: number; speed: number | 'max'; recordingAvailable: boolean | null; withServer: boolean; schedule?: ScheduleLag; recordingProblem?: string | null }): ReplayResult {
    if (this.row) this.series.push(finishRow(this.row));
    this.row = null;
    const snap = this.model.snapshot;
    const timeline = this.timeline;
    return {
      scenario: this.scenario,
      seed: o.seed,
      speed: o.speed,
      liveAt: snap.liveAt,
      endedAt: snap.endedAt,
      openedAt: snap.openedAt,
      peakListeners: this.peakListeners,
      peakAt: this.peakAt,
      series: this.series,
      events: this.events,
      recordingAvailable: o.recordingAvailable,
      withServer: o.withServer,
      steps: this.steps,
      footprint: this.model.footprint,
      rooms: this.model.roomSnapshots.map((r: RoomSnapshot, i) => ({
        name: r.name,
        host: r.host,
        account: r.account,
        openedAt: r.openedAt,
        liveAt: r.liveAt,
        endedAt: r.endedAt,
        crashed: r.crashed,
        // one room and no timeline: the room's peak is the replay's
        peakListeners: timeline ? this.peaks[i]!.n : this.peakListeners,
        peakAt: timeline ? this.peaks[i]!.at : this.peakAt,
      })),
      timeline,
      schedule: o.schedule ?? null,
      recordingProblem: o.recordingProblem ?? null,
    };
  }
}

/** The model alone, start to end, synchronously: what `fit` calls hundreds of times. Same result as `runReplay` at 'max' without a port. */
export function replayModel(scenario: Scenario, seed: number): ReplayResult {
  const model = createCrowdModel(scenario, createRng(seed).fork('crowd'));
  const rec = new Recorder(scenario, model);
  while (!model.done) rec.record(model.step(NO_REAL), NO_REAL);
  return rec.result({ seed, speed: 'max', recordingAvailable: null, withServer: false });
}

/**
 * Steps the crowd model from the scenario's start to its end. At speed N one simulated second takes
 * 1000/N ms of the injected clock, scheduled from the start so a slow step is caught up, not carried;
 * a replay behind its schedule still yields to the event loop after every step (so the server's timers
 * and I/O — its lease renewal in a cluster among them — run while it catches up) and says how far behind
 * it ran. At 'max' it never sleeps but yields now and then so a live server stays responsive.
 */
export async function runReplay(o: RunReplayOptions): Promise<ReplayResult> {
  const { scenario, clock, port } = o;
  const model = createCrowdModel(scenario, createRng(o.seed).fork('crowd'));
  const rec = new Recorder(scenario, model);
  const t0 = clock.now();
  const schedule: ScheduleLag = { lateSteps: 0, maxBehindMs: 0 };
  while (!model.done) {
    if (o.signal?.aborted) throw new Error('replay aborted');
    const real = port ? port.takeRealLoad() : NO_REAL;
    const s = model.step(real);
    if (port) {
      // the space follows the model's events, each emitted once, in the step it happens
      if (s.events.includes(SPACE_EVENTS.opened)) await port.openSpace(s.t);
      if (s.events.includes(SPACE_EVENTS.started)) await port.startSpace(s.t);
      if (s.events.includes(SPACE_EVENTS.ended)) await port.endSpace(s.t);
      // later rooms open, start and end, and any room may crash: the first room's life is above
      for (const c of s.roomChanges ?? []) if (c.index > 0 || c.change === 'crashed') await port.roomChanged?.(c, s.t);
      port.publish(s);
    }
    rec.record(s, real);
    o.onStep?.(s);
    if (o.speed === 'max') {
      if (rec.steps % 500 === 0) await new Promise<void>((r) => setImmediate(r));
    } else {
      const wait = t0 + (rec.steps * 1000) / o.speed - clock.now();
      if (wait > 0) await clock.sleep(wait, o.signal);
      else {
        // behind: the next step is due already; it runs after a turn of the event loop, not straight away
        schedule.lateSteps++;
        schedule.maxBehindMs = Math.max(schedule.maxBehindMs, -wait);
        await clock.turn();
      }
    }
  }
  let recordingAvailable: boolean | null = null;
  // without a server there is no file to check: null says "not checked", the report says so
  if (port) recordingAvailable = model.snapshot.endedAt !== null ? await port.recordingAvailable() : false;
  const recordingProblem = recordingAvailable === false ? (port?.recordingProblem?.() ?? null) : null;
  return rec.result({ seed: o.seed, speed: o.speed, recordingAvailable, withServer: !!port, recordingProblem, ...(o.speed === 'max' ? {} : { schedule }) });
}

function finishRow(r: MinuteRow): MinuteRow {
  const seconds = 60;
  const share = (gap: number, live: number): number => (live > 0 ? gap / live : 0);
  const audio = r.rooms
    ? {
        audioGapShare: share(r.gapListenerSeconds!, r.liveListenerSeconds!),
        rooms: r.rooms.map((m) => ({ ...m, audioGapShare: share(m.gapListenerSeconds, m.liveListenerSeconds) })),
      }
    : {};
  return {
    ...r,
    ...audio,
    availability: r.attempts > 0 ? (r.attempts - r.failures) / r.attempts : 1,
    realAvailability: r.realAttempts > 0 ? r.realAdmitted / r.realAttempts : null,
    offered: r.offered / seconds,
    admitted: r.admitted / seconds,
    attack: r.attack / seconds,
  };
}
