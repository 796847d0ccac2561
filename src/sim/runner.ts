import type { Clock } from '../clock.js';
import { createCrowdModel, SPACE_EVENTS } from './model.js';
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

/**
 * Steps the crowd model from the scenario's start to its end. At speed N one simulated second takes
 * 1000/N ms of the injected clock, scheduled from the start so a slow step is caught up, not carried;
 * at 'max' it never sleeps but yields to the event loop now and then so a live server stays responsive.
 */
export async function runReplay(o: RunReplayOptions): Promise<ReplayResult> {
  const { scenario, clock, port } = o;
  const model = createCrowdModel(scenario, createRng(o.seed).fork('crowd'));
  const series: MinuteRow[] = [];
  const events: { t: number; text: string }[] = [];
  let row: MinuteRow | null = null;
  let peakListeners = 0;
  let peakAt: number | null = null;
  const t0 = clock.now();
  let steps = 0;
  while (!model.done) {
    if (o.signal?.aborted) throw new Error('replay aborted');
    const real = port ? port.takeRealLoad() : NO_REAL;
    const s = model.step(real);
    steps++;
    if (port) {
      // the space follows the model's events, each emitted once, in the step it happens
      if (s.events.includes(SPACE_EVENTS.opened)) await port.openSpace(s.t);
      if (s.events.includes(SPACE_EVENTS.started)) await port.startSpace(s.t);
      if (s.events.includes(SPACE_EVENTS.ended)) await port.endSpace(s.t);
      port.publish(s);
    }
    for (const text of s.events) events.push({ t: s.t, text });
    if (s.listeners > peakListeners) {
      peakListeners = s.listeners;
      peakAt = s.t;
    }
    const minute = Math.floor((s.t - 1) / 60_000) * 60_000 + 60_000;
    if (!row || row.t !== minute) {
      if (row) series.push(finishRow(row));
      row = { t: minute, listeners: 0, realListeners: 0, availability: 1, realAvailability: null, offered: 0, admitted: 0, attack: 0, latencyP50Ms: 0, latencyP99Ms: 0, attempts: 0, failures: 0, realAttempts: 0, realAdmitted: 0, phase: s.phase };
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
    o.onStep?.(s);
    if (o.speed === 'max') {
      if (steps % 500 === 0) await new Promise<void>((r) => setImmediate(r));
    } else {
      await clock.sleep(t0 + (steps * 1000) / o.speed - clock.now(), o.signal);
    }
  }
  if (row) series.push(finishRow(row));
  const snap = model.snapshot;
  let recordingAvailable: boolean | null = null;
  // without a server there is no file to check: null says "not checked", the report says so
  if (port) recordingAvailable = snap.endedAt !== null ? await port.recordingAvailable() : false;
  return {
    scenario,
    seed: o.seed,
    speed: o.speed,
    liveAt: snap.liveAt,
    endedAt: snap.endedAt,
    openedAt: snap.openedAt,
    peakListeners,
    peakAt,
    series,
    events,
    recordingAvailable,
    withServer: !!port,
    steps,
    footprint: model.footprint,
  };
}

function finishRow(r: MinuteRow): MinuteRow {
  const seconds = 60;
  return {
    ...r,
    availability: r.attempts > 0 ? (r.attempts - r.failures) / r.attempts : 1,
    realAvailability: r.realAttempts > 0 ? r.realAdmitted / r.realAttempts : null,
    offered: r.offered / seconds,
    admitted: r.admitted / seconds,
    attack: r.attack / seconds,
  };
}
