import type { RealLoad, ReplayStep, SimPhase } from './port.js';
import type { Rng } from './rng.js';
import type { Scenario } from './scenario.js';

type Condition = Scenario['assumptions']['hostStart']['when'];

/** The events that move the space through its life; the runner drives the replay port from these alone. */
export const SPACE_EVENTS = { opened: 'space opened', started: 'host started', ended: 'host ended' } as const;

/** Piecewise-linear interpolation over keyframes; flat before the first and after the last. */
export function interpolate(frames: readonly { t: number; v: number }[], t: number): number {
  const first = frames[0];
  if (!first) return 0;
  if (t <= first.t) return first.v;
  for (let i = 1; i < frames.length; i++) {
    const b = frames[i]!;
    if (t <= b.t) {
      const a = frames[i - 1]!;
      return a.v + ((b.v - a.v) * (t - a.t)) / (b.t - a.t);
    }
  }
  return frames.at(-1)!.v;
}

/**
 * Retries due in the coming seconds, as a difference array over a ring: spreading n retries evenly
 * over [lo, hi] seconds from now costs O(1), and the ring's length is fixed by the longest delay,
 * not by how many people are retrying.
 */
class RetryRing {
  private readonly diff: Float64Array;
  private rate = 0;
  private head = 0;

  constructor(readonly size: number) {
    this.diff = new Float64Array(size + 2);
  }

  /** Adds n retries spread evenly over the seconds [lo, hi] after the current one (1 ≤ lo ≤ hi < size). */
  schedule(n: number, lo: number, hi: number): void {
    if (n <= 0) return;
    const per = n / (hi - lo + 1);
    const len = this.diff.length;
    this.diff[(this.head + lo) % len]! += per;
    this.diff[(this.head + hi + 1) % len]! -= per;
  }

  /** Moves to the next second and returns the retries due in it. */
  advance(): number {
    const len = this.diff.length;
    this.head = (this.head + 1) % len;
    this.rate += this.diff[this.head]!;
    this.diff[this.head] = 0;
    // float drift must not invent negative people
    if (this.rate < 1e-9) this.rate = Math.max(0, this.rate);
    return this.rate;
  }

  /** Everyone scheduled but not yet due (for conservation checks). */
  pending(): number {
    let total = 0;
    let r = this.rate;
    const len = this.diff.length;
    for (let k = 1; k < len; k++) {
      r += this.diff[(this.head + k) % len]!;
      total += Math.max(0, r);
    }
    return total;
  }
}

interface ActiveMitigations {
  shedding: boolean;
  capacityFactor: number;
  admissionCap: number | null;
  attackFiltered: number | null;
  applied: Set<string>;
}

/** Trailing-window health the conditions look at (one value per second, fixed-size rings). */
class Window {
  private readonly values: Float64Array;
  private readonly weights: Float64Array;
  private i = 0;
  private n = 0;

  constructor(seconds: number) {
    this.values = new Float64Array(Math.max(1, seconds));
    this.weights = new Float64Array(Math.max(1, seconds));
  }

  push(v: number, w = 1): void {
    this.values[this.i] = v * w;
    this.weights[this.i] = w;
    this.i = (this.i + 1) % this.values.length;
    this.n = Math.min(this.n + 1, this.values.length);
  }

  mean(): number {
    let s = 0;
    let w = 0;
    for (let k = 0; k < this.n; k++) {
      s += this.values[k]!;
      w += this.weights[k]!;
    }
    return w > 0 ? s / w : 1;
  }
}

export interface ModelState {
  t: number;
  listeners: number;
  liveAt: number | null;
  endedAt: number | null;
  openedAt: number | null;
  gaveUp: number;
  firstAttempts: number;
}

/**
 * The crowd as a cohort/flow model stepped one simulated second at a time. State is a handful of
 * numbers plus fixed-size retry rings (one per attempt number): memory and time per step do not
 * depend on how many people are in the crowd.
 */
export class CrowdModel {
  readonly stepMs = 1000;
  private readonly a: Scenario['assumptions'];
  private readonly demand: { t: number; v: number }[];
  private readonly capacity: { t: number; v: number }[];
  private readonly attack: { t: number; v: number }[] | null;
  private readonly rings: RetryRing[];
  private readonly mit: ActiveMitigations = { shedding: false, capacityFactor: 1, admissionCap: null, attackFiltered: null, applied: new Set() };
  private readonly since = new Map<Condition, number>();
  private readonly failWindow = new Window(60);
  private readonly state: ModelState;
  private waitingForOpen = 0;
  private lastPhase: SimPhase = 'pre_open';
  private pendingEvents: string[] = [];

  constructor(
    private readonly scenario: Scenario,
    private readonly rng: Rng,
  ) {
    const a = (this.a = scenario.assumptions);
    const at = scenario.at;
    this.demand = a.demand.keyframes.map((k) => ({ t: at(k.at), v: k.perSecond * a.demand.scale }));
    this.capacity = a.capacity.keyframes.map((k) => ({ t: at(k.at), v: k.joinsPerSecond }));
    this.attack = a.attack ? a.attack.keyframes.map((k) => ({ t: at(k.at), v: k.perSecond })) : null;
    // the ring must reach the latest second any policy can schedule a retry for
    const ringSize = Math.ceil(Math.max(a.clients.retry.capSeconds, a.clients.retry.immediateSeconds[1])) + 4;
    this.rings = Array.from({ length: a.clients.retry.maxAttempts }, () => new RetryRing(ringSize));
    this.state = { t: scenario.replayFromMs, listeners: 0, liveAt: null, endedAt: null, openedAt: null, gaveUp: 0, firstAttempts: 0 };
  }

  get done(): boolean {
    return this.state.t >= this.scenario.replayUntilMs;
  }

  get snapshot(): Readonly<ModelState> {
    return this.state;
  }

  /** The model's size in numbers held, for tests that check it does not grow with the crowd. */
  get footprint(): number {
    return this.rings.reduce((n, r) => n + r.size, 0);
  }

  /** Everyone still trying to get in (waiting for a retry), for conservation checks. */
  get retrying(): number {
    return this.rings.reduce((n, r) => n + r.pending(), 0);
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

  private applyMitigations(m: { availability: number; latencyP99Ms: number }): void {
    for (const x of this.a.mitigations) {
      if (this.mit.applied.has(x.name)) continue;
      const due = x.at ? this.state.t >= this.scenario.at(x.at) : this.holds(x.when!, m);
      if (!due) continue;
      this.mit.applied.add(x.name);
      if (x.shedding) this.mit.shedding = true;
      this.mit.capacityFactor *= x.capacityFactor;
      if (x.admissionCap !== null) this.mit.admissionCap = x.admissionCap;
      if (x.attackFiltered !== undefined) this.mit.attackFiltered = x.attackFiltered;
      this.pendingEvents.push(`mitigation: ${x.name}`);
    }
  }

  step(real: RealLoad = { attempts: 0, admitted: 0, listeners: 0 }): ReplayStep {
    const s = this.state;
    const a = this.a;
    s.t += this.stepMs;
    const t = s.t;
    const events = this.pendingEvents;
    this.pendingEvents = [];
    const open = t >= this.scenario.opensAtMs && s.endedAt === null;
    if (open && s.openedAt === null) {
      s.openedAt = t;
      events.push(SPACE_EVENTS.opened);
    }

    // who tries this second: first attempts, retries coming due, and (once open) those who came early
    const noise = 1 + a.demand.noise * (2 * this.rng.next() - 1);
    const arrivals = s.endedAt === null ? Math.max(0, interpolate(this.demand, t) * noise) : 0;
    const due = this.rings.map((r) => r.advance());
    let first = arrivals;
    if (!open) {
      this.waitingForOpen += arrivals;
      first = 0;
    } else if (this.waitingForOpen > 0) {
      first += this.waitingForOpen;
      this.waitingForOpen = 0;
    }
    if (s.endedAt !== null) for (let k = 0; k < due.length; k++) due[k] = 0;
    const retries = due.reduce((x, y) => x + y, 0);
    // the modelled crowd's attempts; real clients' attempts add to the load but are counted by the server
    const legit = first + retries;
    s.firstAttempts += first;

    const filtered = this.mit.attackFiltered ?? a.attack?.filtered ?? 1;
    const attack = this.attack ? interpolate(this.attack, t) * (1 - filtered) : 0;
    const offered = (legit + real.attempts) * a.capacity.requestsPerJoin + attack;
    const capacity = interpolate(this.capacity, t) * this.mit.capacityFactor;

    // goodput: below capacity everything is served; above it, work wasted on requests that time out
    // drags goodput under capacity (congestion collapse) unless excess is shed cheaply up front
    const rho = capacity > 0 ? offered / capacity : Infinity;
    let served: number;
    if (rho <= 1) served = offered;
    else if (this.mit.shedding) served = capacity * a.capacity.sheddingGoodput;
    else served = capacity / (1 + a.capacity.collapse * (rho - 1));
    const pSuccess = offered > 0 ? Math.min(1, served / offered) : 1;
    let admitted = open ? legit * pSuccess : 0;
    if (this.mit.admissionCap !== null) admitted = Math.min(admitted, Math.max(0, this.mit.admissionCap - s.listeners));
    const availability = legit > 0 ? admitted / legit : 1;
    const failures = Math.max(0, legit - admitted);

    // latency from an M/M/1 view of the work the servers take on, capped by the client timeout:
    // without shedding they take on everything offered; with it, only what they admit
    const util = Math.min(0.995, capacity > 0 ? (this.mit.shedding ? served : offered) / capacity : 1);
    const meanMs = a.capacity.baseLatencyMs / (1 - util);
    const latencyP50Ms = Math.min(a.capacity.timeoutMs, meanMs * Math.LN2);
    const latencyP99Ms = Math.min(a.capacity.timeoutMs, meanMs * Math.log(100));

    // failures by attempt number: each retries per policy or gives up
    const g = a.clients.giveUpProbability;
    const classes = [first, ...due];
    for (let k = 0; k < classes.length && k < this.rings.length; k++) {
      const fk = legit > 0 ? (failures * classes[k]!) / legit : 0;
      if (fk <= 0) continue;
      const win = k + 1 < this.rings.length ? this.retryWindow(k + 1) : null;
      if (!win || s.endedAt !== null) {
        s.gaveUp += fk;
        continue;
      }
      s.gaveUp += fk * g;
      this.rings[k + 1]!.schedule(fk * (1 - g), win[0], win[1]);
    }
    if (classes.length > this.rings.length) s.gaveUp += failures * (classes.at(-1)! / Math.max(legit, 1));

    const leaving = s.listeners * (1 - Math.exp(-1 / (a.clients.sessionMinutes * 60)));
    s.listeners = Math.max(0, s.listeners + admitted - leaving);
    if (s.endedAt !== null) s.listeners = 0;

    this.failWindow.push(availability, legit);
    const health = { availability, latencyP99Ms };
    this.applyMitigations(health);
    if (s.liveAt === null && open && t >= this.scenario.scheduledStartMs && this.holds(a.hostStart.when, health)) {
      s.liveAt = t;
      events.push(SPACE_EVENTS.started);
    }
    if (s.liveAt !== null && s.endedAt === null && t - s.liveAt >= a.hostEnd.afterMinutesLive * 60_000) {
      s.endedAt = t;
      events.push(SPACE_EVENTS.ended);
    }

    const phase: SimPhase =
      s.endedAt !== null ? 'ended' : s.liveAt !== null ? 'live' : !open ? 'pre_open' : this.failWindow.mean() < a.failingBelow ? 'failing' : 'open';
    if (phase !== this.lastPhase && phase === 'failing') events.push('join path failing');
    if (this.lastPhase === 'failing' && phase === 'open') events.push('join path recovered');
    this.lastPhase = phase;

    return {
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
  }
}

/**
 * When n real clients should arrive, in simulated ms: the quantiles of the scenario's demand curve, so
 * real clients come when the modelled crowd comes (most of them into the surge at the scheduled start).
 */
export function demandQuantiles(scenario: Scenario, n: number): number[] {
  const frames = scenario.assumptions.demand.keyframes.map((k) => ({ t: scenario.at(k.at), v: k.perSecond }));
  const cum: number[] = [];
  let total = 0;
  for (let t = scenario.replayFromMs; t < scenario.replayUntilMs; t += 1000) {
    total += interpolate(frames, t);
    cum.push(total);
  }
  const out: number[] = [];
  let j = 0;
  for (let i = 0; i < n; i++) {
    const target = ((i + 0.5) / n) * total;
    while (j < cum.length - 1 && cum[j]! < target) j++;
    out.push(scenario.replayFromMs + j * 1000);
  }
  return out;
}

export function createCrowdModel(scenario: Scenario, rng: Rng): CrowdModel {
  return new CrowdModel(scenario, rng);
}
