/**
 * The crowd model: one simulated second at a time (`CrowdModel.step`).
 *
 * Why this file is one unit (~450 lines, over the ~300 the project aims for): a step is one pass over
 * shared state — the rooms, their retry rings, the join path's health window, the mitigations in
 * force — in an order that matters: the seeded replays are byte-identical only while every floating
 * point operation happens in this order, and each stage (arrivals, retries due, goodput, admissions,
 * failures → retries, leaving, crashes, phase) reads what the stage before wrote. Split across files
 * it would be the same code with the state passed around. What stands on its own lives beside it:
 * `curves.ts` (keyframes, when real clients arrive), `rings.ts` (the fixed-size retry and health
 * rings), `mitigations.ts` (applying and undoing mitigations), `port.ts` (what a step reports).
 */
import { interpolate } from './curves.js';
import { Mitigations, type Condition } from './mitigations.js';
import type { RealLoad, ReplayStep, RoomChange, SimPhase } from './port.js';
import { RetryRing, Window } from './rings.js';
import type { Rng } from './rng.js';
import type { Scenario } from './scenario.js';

export { demandQuantiles, interpolate } from './curves.js';

/** The events that move the space through its life; the runner drives the replay port from these alone. */
export const SPACE_EVENTS = { opened: 'space opened', started: 'host started', ended: 'host ended' } as const;

export interface ModelState {
  t: number;
  /** Virtual listeners in every room. */
  listeners: number;
  /** The first room's life (the event's own room). */
  liveAt: number | null;
  endedAt: number | null;
  openedAt: number | null;
  gaveUp: number;
  firstAttempts: number;
}

/** One room on the timeline, as the model sees it after a step. */
export interface RoomSnapshot {
  name: string;
  host: string;
  account: string;
  phase: SimPhase;
  listeners: number;
  openedAt: number | null;
  liveAt: number | null;
  endedAt: number | null;
  crashed: boolean;
  /** Share of the audio a listener in this room could not use in the last step (lost, stalled or echoed chunks). */
  audioGap: number;
}

interface Room extends RoomSnapshot {
  index: number;
  rings: RetryRing[];
  /** When the host goes on air (rooms after the first): minutes after opening. */
  startAfterMs: number;
  endAfterMs: number;
  /** Followers from an earlier room: arrive at `rate` per second in [from, until). */
  follow: { pending: number; rate: number; from: number; until: number } | null;
  /** The audience the room had when it ended, for rooms that migrate from it. */
  audienceAtEnd: number;
}

type RoomSpec = Scenario['assumptions']['rooms'][number];

/**
 * The crowd as a cohort/flow model stepped one simulated second at a time. State is a handful of
 * numbers plus fixed-size retry rings (one per attempt number and room): memory and time per step do
 * not depend on how many people are in the crowd.
 *
 * An incident is a timeline of rooms. The first is the event's own (`event.opensAt`, host start by
 * the `hostStart` rule); later rooms open at a time or after another room ends, and part of the
 * audience follows (`migration`). Every room shares the one join path. A crash throws listeners out:
 * they come back as first retries under the retry policy, into the same room, or into a room that
 * has ended, where every attempt fails ("This Space has ended") until they give up.
 */
export class CrowdModel {
  readonly stepMs = 1000;
  private readonly a: Scenario['assumptions'];
  private readonly demand: { t: number; v: number }[];
  private readonly capacity: { t: number; v: number }[];
  private readonly attack: { t: number; v: number }[] | null;
  private readonly rooms: Room[];
  private readonly specs: (RoomSpec | null)[];
  private readonly crashed = new Set<number>();
  private readonly mitigations: Mitigations;
  /** What the mitigations in force do (the same object throughout; `mitigations` keeps it current). */
  private readonly mit: Mitigations['effects'];
  private readonly since = new Map<Condition, number>();
  private readonly failWindow = new Window(60);
  private readonly state: ModelState;
  private readonly timeline: boolean;
  private readonly audioFaults: { room: string | undefined; from: number; to: number; keep: number }[];
  /** Per-room numbers reused every step, so a step allocates nothing per room. */
  private readonly scratch: { firsts: Float64Array; legits: Float64Array; admits: Float64Array; dues: Float64Array[] };
  private waitingForOpen = 0;
  private lastPhase: SimPhase = 'pre_open';
  private pendingEvents: string[] = [];
  private changes: RoomChange[] = [];

  constructor(
    private readonly scenario: Scenario,
    private readonly rng: Rng,
  ) {
    const a = (this.a = scenario.assumptions);
    const at = scenario.at;
    this.demand = a.demand.keyframes.map((k) => ({ t: at(k.at), v: k.perSecond * a.demand.scale }));
    this.capacity = a.capacity.keyframes.map((k) => ({ t: at(k.at), v: k.joinsPerSecond }));
    this.attack = a.attack ? a.attack.keyframes.map((k) => ({ t: at(k.at), v: k.perSecond })) : null;
    this.timeline = usesTimeline(scenario);
    // the ring must reach the latest second any policy can schedule a retry for
    const ringSize = Math.ceil(Math.max(a.clients.retry.capSeconds, a.clients.retry.immediateSeconds[1])) + 4;
    const room = (index: number, name: string, host: string, account: string, startAfterMs: number, endAfterMs: number): Room => ({
      index, name, host, account, startAfterMs, endAfterMs,
      phase: 'pre_open', listeners: 0, openedAt: null, liveAt: null, endedAt: null, crashed: false, audioGap: 0,
      rings: Array.from({ length: a.clients.retry.maxAttempts }, () => new RetryRing(ringSize)),
      follow: null, audienceAtEnd: 0,
    });
    const e = scenario.event;
    this.rooms = [
      room(0, e.room, e.host, e.account, 0, a.hostEnd.afterMinutesLive * 60_000),
      ...a.rooms.map((r, i) => room(i + 1, r.name, r.host, r.account ?? e.account, r.startAfterMinutes * 60_000, r.endAfterMinutesLive * 60_000)),
    ];
    this.specs = [null, ...a.rooms];
    const n = this.rooms.length;
    this.scratch = { firsts: new Float64Array(n), legits: new Float64Array(n), admits: new Float64Array(n), dues: this.rooms.map(() => new Float64Array(a.clients.retry.maxAttempts)) };
    this.audioFaults = a.audio.faults.map((f) => ({ room: f.room, from: at(f.from), to: at(f.to), keep: (1 - f.chunkLoss) * (1 - f.stall) * (1 - f.duplicate) }));
    this.mitigations = new Mitigations(scenario);
    this.mit = this.mitigations.effects;
    this.state = { t: scenario.replayFromMs, listeners: 0, liveAt: null, endedAt: null, openedAt: null, gaveUp: 0, firstAttempts: 0 };
  }

  get done(): boolean {
    return this.state.t >= this.scenario.replayUntilMs;
  }

  get snapshot(): Readonly<ModelState> {
    return this.state;
  }

  /** Every room on the timeline, the event's own first. */
  get roomSnapshots(): readonly Readonly<RoomSnapshot>[] {
    return this.rooms;
  }

  /** The model's size in numbers held, for tests that check it does not grow with the crowd. */
  get footprint(): number {
    return this.rooms.reduce((n, room) => n + room.rings.reduce((m, r) => m + r.size, 0), 0);
  }

  /** Everyone still trying to get in (waiting for a retry), for conservation checks. */
  get retrying(): number {
    return this.rooms.reduce((n, room) => n + room.rings.reduce((m, r) => m + r.pending(), 0), 0);
  }

  private retryWindow(attempt: number): readonly [number, number] | null {
    const r = this.a.clients.retry;
    const backoff = Math.min(r.capSeconds, r.baseSeconds * 2 ** Math.max(0, attempt - 1));
    switch (r.policy) {
      case 'none':
        return null;
      case 'immediate':
        return r.immediateSeconds;
      case 'exponential':
        return [Math.max(1, Math.round(backoff)), Math.max(1, Math.round(backoff))];
      case 'jittered':
        return [1, Math.max(1, Math.round(backoff))];
    }
  }

  private holds(c: Condition, m: { availability: number; latencyP99Ms: number }): boolean {
    const t = this.state.t;
    if (c.after && t < this.scenario.at(c.after)) return false;
    const failure = 1 - this.failWindow.mean();
    const now =
      (c.failureAbove === undefined || failure > c.failureAbove) &&
      (c.availabilityAbove === undefined || 1 - failure >= c.availabilityAbove) &&
      (c.latencyP99BelowMs === undefined || m.latencyP99Ms < c.latencyP99BelowMs) &&
      (c.listenersAbove === undefined || this.state.listeners > c.listenersAbove) &&
      (c.mitigationApplied === undefined || this.mit.applied.has(c.mitigationApplied));
    if (!now) {
      this.since.delete(c);
      return false;
    }
    const from = this.since.get(c) ?? t;
    this.since.set(c, from);
    return t - from >= c.forMinutes * 60_000;
  }

  /** Opens rooms that come due; the first room by `event.opensAt`, later ones by time or another room's end. */
  private openRooms(t: number, events: string[]): void {
    for (const r of this.rooms) {
      if (r.openedAt !== null || r.endedAt !== null) continue;
      const spec = this.specs[r.index];
      let due: boolean;
      if (!spec) due = t >= this.scenario.opensAtMs;
      else if (spec.opensAt) due = t >= this.scenario.at(spec.opensAt);
      else {
        const after = this.rooms.find((x) => x.name === spec.opensAfter!.roomEnds)!;
        due = after.endedAt !== null && t >= after.endedAt + spec.opensAfter!.minutes * 60_000;
      }
      if (!due) continue;
      r.openedAt = t;
      this.change(r, 'opened');
      events.push(r.index === 0 ? SPACE_EVENTS.opened : `room ${r.name} opened (host ${r.host}, ${r.account})`);
    }
    for (const r of this.rooms) {
      const m = this.specs[r.index]?.migration;
      if (!m || r.follow || r.openedAt === null) continue;
      const from = this.rooms.find((x) => x.name === m.from)!;
      if (from.endedAt === null) continue;
      const start = Math.max(r.openedAt, from.endedAt) + m.delayMinutes * 60_000;
      const count = from.audienceAtEnd * m.share;
      const spreadMs = m.spreadMinutes * 60_000;
      r.follow = { pending: count, rate: count / (spreadMs / 1000), from: start, until: start + spreadMs };
    }
  }

  /** The room new arrivals go to: the newest one open and not ended. */
  private current(): Room | null {
    for (let i = this.rooms.length - 1; i >= 0; i--) {
      const r = this.rooms[i]!;
      if (r.openedAt !== null && r.endedAt === null) return r;
    }
    return null;
  }

  /** Will any room still open (so arrivals wait for it rather than go away)? */
  private roomsAhead(): boolean {
    return this.rooms.some((r) => r.openedAt === null && r.endedAt === null);
  }

  private change(r: Room, change: RoomChange['change']): void {
    if (this.timeline) this.changes.push({ room: r.name, index: r.index, change, host: r.host, account: r.account });
  }

  private endRoom(r: Room, t: number, events: string[], crashed: boolean): void {
    r.audienceAtEnd = r.listeners;
    r.listeners = 0;
    r.endedAt = t;
    r.crashed = crashed;
    if (r.index === 0) this.state.endedAt = t;
    this.change(r, crashed ? 'crashed' : 'ended');
    events.push(crashed ? `room ${r.name} ended: crashed` : r.index === 0 ? SPACE_EVENTS.ended : `room ${r.name}: host ended`);
  }

  private crashRooms(t: number, health: { availability: number; latencyP99Ms: number }, events: string[]): void {
    this.a.crashes.forEach((c, i) => {
      if (this.crashed.has(i)) return;
      const r = this.rooms.find((x) => x.name === c.room)!;
      if (r.openedAt === null || r.endedAt !== null) return;
      const due = c.at ? t >= this.scenario.at(c.at) : this.holds(c.when!, health);
      if (!due) return;
      this.crashed.add(i);
      const ejected = r.listeners * c.eject;
      events.push(`room ${r.name} crashed: ${Math.round(ejected)} listeners thrown out`);
      this.eject(r, ejected);
      if (c.ends) {
        r.listeners += ejected; // the audience at the end counts everyone who was inside
        this.endRoom(r, t, events, true);
      }
    });
  }

  /** Throws n listeners out of a room: each comes back as a first retry under the retry policy. */
  private eject(r: Room, n: number): void {
    r.listeners -= n;
    const win = this.retryWindow(1);
    if (!win || r.rings.length < 2) this.state.gaveUp += n;
    else r.rings[1]!.schedule(n, win[0], win[1]);
  }

  private audioGap(r: Room, t: number, availability: number): number {
    if (r.liveAt === null || r.endedAt !== null) return 0;
    let keep = 1 - this.a.audio.overloadCoupling * (1 - availability);
    for (const f of this.audioFaults) if (t >= f.from && t < f.to && (f.room === undefined || f.room === r.name)) keep *= f.keep;
    return 1 - keep;
  }

  step(real: RealLoad = { attempts: 0, admitted: 0, listeners: 0 }): ReplayStep {
    const s = this.state;
    const a = this.a;
    s.t += this.stepMs;
    const t = s.t;
    const events = this.pendingEvents;
    this.pendingEvents = [];
    this.openRooms(t, events);
    const main = this.rooms[0]!;
    s.openedAt = main.openedAt;
    const target = this.current();

    // who tries this second: first attempts, retries coming due, and (once open) those who came early
    const noise = 1 + a.demand.noise * (2 * this.rng.next() - 1);
    const arrivals = target || this.roomsAhead() ? Math.max(0, interpolate(this.demand, t) * noise) : 0;
    const { firsts, legits, admits, dues } = this.scratch;
    firsts.fill(0);
    if (!target) this.waitingForOpen += arrivals;
    else {
      firsts[target.index] = arrivals;
      if (this.waitingForOpen > 0) {
        firsts[target.index]! += this.waitingForOpen;
        this.waitingForOpen = 0;
      }
    }
    for (const r of this.rooms) {
      const f = r.follow;
      if (!f || f.pending <= 0 || t < f.from || r.endedAt !== null) continue;
      const n = Math.min(f.pending, f.rate);
      f.pending -= n;
      firsts[r.index]! += n;
    }
    let legit = 0;
    for (const r of this.rooms) {
      const due = dues[r.index]!;
      // a host's normal end sends everyone home; after a crash the room is dead but people keep trying
      const stopped = r.endedAt !== null && !r.crashed;
      let retries = 0;
      for (let k = 0; k < r.rings.length; k++) {
        due[k] = stopped ? (r.rings[k]!.advance(), 0) : r.rings[k]!.advance();
        retries += due[k]!;
      }
      legits[r.index] = firsts[r.index]! + retries;
      s.firstAttempts += firsts[r.index]!;
      legit = r.index === 0 ? legits[0]! : legit + legits[r.index]!;
    }
    // the modelled crowd's attempts; real clients' attempts add to the load but are counted by the server

    const filtered = this.mit.attackFiltered ?? a.attack?.filtered ?? 1;
    const attack = this.attack ? interpolate(this.attack, t) * (1 - filtered) : 0;
    let offered = (legit + real.attempts) * a.capacity.requestsPerJoin + attack;
    // the crowd already inside is load too: count polls, heartbeats, reactions
    const perListener = a.roomLoad.requestsPerListenerPerSecond;
    if (perListener > 0) offered += (s.listeners + real.listeners) * perListener;
    const capacity = interpolate(this.capacity, t) * this.mit.capacityFactor;

    // goodput: below capacity everything is served; above it, work wasted on requests that time out
    // drags goodput under capacity (congestion collapse) unless excess is shed cheaply up front
    const rho = capacity > 0 ? offered / capacity : Infinity;
    let served: number;
    if (rho <= 1) served = offered;
    else if (this.mit.shedding) served = capacity * a.capacity.sheddingGoodput;
    else served = capacity / (1 + a.capacity.collapse * (rho - 1));
    const pSuccess = offered > 0 ? Math.min(1, served / offered) : 1;
    let admitted = 0;
    for (const r of this.rooms) {
      const open = r.openedAt !== null && r.endedAt === null;
      let a = open ? legits[r.index]! * pSuccess : 0;
      if (r === target && this.mit.admissionCap !== null) a = Math.min(a, Math.max(0, this.mit.admissionCap - r.listeners));
      admits[r.index] = a;
      admitted = r.index === 0 ? a : admitted + a;
    }
    const availability = legit > 0 ? admitted / legit : 1;
    const failures = Math.max(0, legit - admitted);

    // latency from an M/M/1 view of the work the servers take on, capped by the client timeout:
    // without shedding they take on everything offered; with it, only what they admit
    const util = Math.min(0.995, capacity > 0 ? (this.mit.shedding ? served : offered) / capacity : 1);
    const meanMs = a.capacity.baseLatencyMs / (1 - util);
    const latencyP50Ms = Math.min(a.capacity.timeoutMs, meanMs * Math.LN2);
    const latencyP99Ms = Math.min(a.capacity.timeoutMs, meanMs * Math.log(100));

    // failures by attempt number, per room: each retries per policy or gives up
    const g = a.clients.giveUpProbability;
    for (const r of this.rooms) {
      const legitR = legits[r.index]!;
      const failuresR = this.rooms.length === 1 ? failures : Math.max(0, legitR - admits[r.index]!);
      const due = dues[r.index]!;
      const stopped = r.endedAt !== null && !r.crashed;
      // attempt classes: first attempts, then the retries of each ring
      for (let k = 0; k < r.rings.length; k++) {
        const fk = legitR > 0 ? (failuresR * (k === 0 ? firsts[r.index]! : due[k - 1]!)) / legitR : 0;
        if (fk <= 0) continue;
        const win = k + 1 < r.rings.length ? this.retryWindow(k + 1) : null;
        if (!win || stopped) {
          s.gaveUp += fk;
          continue;
        }
        s.gaveUp += fk * g;
        r.rings[k + 1]!.schedule(fk * (1 - g), win[0], win[1]);
      }
      s.gaveUp += failuresR * (due[r.rings.length - 1]! / Math.max(legitR, 1));
    }

    const leaveShare = 1 - Math.exp(-1 / (a.clients.sessionMinutes * 60));
    let listeners = 0;
    for (const r of this.rooms) {
      const leaving = r.listeners * leaveShare;
      r.listeners = Math.max(0, r.listeners + admits[r.index]! - leaving);
      if (r.endedAt !== null) r.listeners = 0;
      listeners = r.index === 0 ? r.listeners : listeners + r.listeners;
    }
    s.listeners = listeners;

    this.failWindow.push(availability, legit);
    const health = { availability, latencyP99Ms };
    this.mitigations.update(t, (c) => this.holds(c, health), this.pendingEvents);
    if (this.timeline) this.crashRooms(t, health, events);
    if (main.liveAt === null && main.openedAt !== null && main.endedAt === null && t >= this.scenario.scheduledStartMs && this.holds(a.hostStart.when, health)) {
      main.liveAt = s.liveAt = t;
      this.change(main, 'started');
      events.push(SPACE_EVENTS.started);
    }
    for (const r of this.rooms) {
      if (r.index > 0 && r.liveAt === null && r.openedAt !== null && r.endedAt === null && t - r.openedAt >= r.startAfterMs) {
        r.liveAt = t;
        this.change(r, 'started');
        events.push(`room ${r.name}: host ${r.host} started`);
      }
      if (r.liveAt !== null && r.endedAt === null && t - r.liveAt >= r.endAfterMs) this.endRoom(r, t, events, false);
    }
    if (this.timeline) s.listeners = this.rooms.reduce((n, r) => n + r.listeners, 0);

    const failing = this.failWindow.mean() < a.failingBelow;
    for (const r of this.rooms) {
      r.phase = r.endedAt !== null ? 'ended' : r.liveAt !== null ? 'live' : r.openedAt === null ? 'pre_open' : failing ? 'failing' : 'open';
      r.audioGap = this.audioGap(r, t, availability);
    }
    // the phase is the room people are trying to reach: the open one, else the next to open, else the last
    const focus = this.current() ?? this.rooms.find((r) => r.openedAt === null && r.endedAt === null) ?? this.rooms.at(-1)!;
    const phase = focus.phase;
    if (phase !== this.lastPhase && phase === 'failing') events.push('join path failing');
    if (this.lastPhase === 'failing' && phase === 'open') events.push('join path recovered');
    this.lastPhase = phase;

    const step: ReplayStep = {
      t,
      phase,
      listeners: s.listeners,
      offered,
      admitted,
      attack,
      availability,
      latencyP50Ms,
      latencyP99Ms,
      attempts: legit,
      failures,
      events,
    };
    if (this.timeline) {
      let weighted = 0;
      let inside = 0;
      for (const r of this.rooms) {
        if (r.liveAt === null || r.endedAt !== null) continue;
        weighted += r.audioGap * r.listeners;
        inside += r.listeners;
      }
      step.audioGapShare = inside > 0 ? weighted / inside : 0;
      step.rooms = this.rooms.map((r) => ({ name: r.name, phase: r.phase, listeners: r.listeners, audioGap: r.audioGap }));
      step.roomChanges = this.changes;
    }
    this.changes = [];
    return step;
  }
}

/** Does the scenario use anything beyond one room with joins only? (Reports show rooms and audio only then.) */
export function usesTimeline(s: Scenario): boolean {
  const a = s.assumptions;
  return a.rooms.length > 0 || a.crashes.length > 0 || a.roomLoad.requestsPerListenerPerSecond > 0 || a.audio.faults.length > 0 || a.audio.overloadCoupling > 0;
}

export function createCrowdModel(scenario: Scenario, rng: Rng): CrowdModel {
  return new CrowdModel(scenario, rng);
}
