import { readFile } from 'node:fs/promises';
import { checkOggOpus } from '../audio/index.js';
import { SIM_PHASES, simEventKind, type ServerMetrics, type SimPhase as PhaseLabel } from '../metrics/index.js';
import { localClock } from '../report/report.js';
import type { FaultInjector, JoinCounters, LiveServer } from '../server/index.js';
import { CLOSE, type SharedFault } from '../protocol/index.js';
import type { ReplayPort, ReplayStep, RealLoad, RoomChange, SimPhase } from '../sim/index.js';
import type { Space } from '../space/index.js';
import type { ReplayFeed } from './feed.js';

// the model's phases and the gauge's closed label set are one list: this stops compiling if they drift
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const phasesAgree: Same<SimPhase, PhaseLabel> = true;
void phasesAgree;

export interface LivePortOptions {
  server: LiveServer;
  metrics: ServerMetrics;
  /** The view the server was built with; the port keeps it up to date. */
  feed: ReplayFeed;
  title: string;
  hostName: string;
  scheduledStartMs: number;
  speed: number | 'max';
  /** The first room's name (scenarios with several rooms name their rooms). */
  room?: string;
  /**
   * Where the real clients' joins are counted: this server's own join path by default; a replay driving a
   * cluster, whose clients join on the other instances, counts them at the clients.
   */
  realJoins?: () => JoinCounters;
  /** The scenario's audio faults and the server's injector, so the real listeners feel what the model counts. */
  audioFaults?: { injector: FaultInjector; windows: readonly AudioFaultWindow[] };
  /** The scenario's time zone, for the simulated times the port reports (UTC by default). */
  timeZone?: string;
}

/** A scenario audio fault in simulated ms (`assumptions.audio.faults`). */
export interface AudioFaultWindow {
  room: string | undefined;
  from: number;
  to: number;
  chunkLoss: number;
  stall: number;
  duplicate: number;
}

/**
 * What a scenario audio fault does on the real server while the simulated clock is inside its window:
 * `chunkLoss` drops that share of the room's chunks before its listeners; `stall` and `duplicate` are on
 * for the whole window (every chunk held, then let go at its end; every chunk echoed 5 chunks later) —
 * the model counts their shares as lost audio, the injector has no share for them.
 */
export function faultsFor(w: AudioFaultWindow, spaceId: string | null): SharedFault[] {
  const out: SharedFault[] = [];
  if (w.chunkLoss > 0) out.push({ kind: 'drop', spaceId, share: w.chunkLoss });
  if (w.stall > 0) out.push({ kind: 'stall', spaceId });
  if (w.duplicate > 0) out.push({ kind: 'duplicate', spaceId, delayChunks: 5 });
  return out;
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

  /** Every room's space, the first one's included; a room that reopens elsewhere is a new space. */
  private readonly rooms = new Map<string, Space>();
  private readonly wentLive = new Set<Space>();
  /** The injector's faults in force for each scenario audio fault whose window the clock is in. */
  private readonly faultsOn = new Map<AudioFaultWindow, SharedFault[]>();
  /** Spaces whose lease another instance took over, with the simulated time this replay learnt it. */
  private readonly takenOver = new Map<Space, number>();

  constructor(private readonly o: LivePortOptions) {
    this.space = o.server.createSpace({ title: o.title, hostName: o.hostName, scheduledStart: o.scheduledStartMs }).space;
    this.rooms.set(o.room ?? 'main', this.space);
    o.feed.playIn(this.space, o.room);
    o.metrics.simSpeed.set(o.speed === 'max' ? 0 : o.speed);
    this.seen = this.joinTotals();
  }

  private joinTotals(): JoinCounters {
    return this.o.realJoins ? this.o.realJoins() : this.o.server.joinTotals();
  }

  openSpace(): void {
    // the space already exists (scheduled); opening lets the crowd in before the host starts
  }

  async startSpace(): Promise<void> {
    if (this.space.state === 'scheduled') await this.o.server.startSpace(this.space, { syntheticHost: true });
    this.wentLive.add(this.space);
  }

  /**
   * The timeline reaches the server: a later room is a new space (its host, its account in the title)
   * that the replay then plays in; a crash ends a room's space with 4003, so its listeners reconnect —
   * to the new room once there is one — and its recording stops where the room did.
   */
  async roomChanged(c: RoomChange, simMs: number): Promise<void> {
    const { server, feed } = this.o;
    let space = this.rooms.get(c.room);
    if (c.change === 'opened' && !space) {
      space = server.createSpace({ title: `${this.o.title} — ${c.account}`, hostName: c.host, scheduledStart: simMs }).space;
      this.rooms.set(c.room, space);
      feed.playIn(space, c.room);
      return;
    }
    if (!space) return;
    if (c.change === 'started' && space.state === 'scheduled') {
      await server.startSpace(space, { syntheticHost: true });
      this.wentLive.add(space);
    }
    if ((c.change === 'ended' || c.change === 'crashed') && space.state !== 'ended') await server.endSpace(space, c.change === 'crashed' ? CLOSE.SPACE_CRASHED : CLOSE.SPACE_ENDED);
  }

  /** The space the conversation is in now. */
  currentSpaceId(): string {
    return this.o.feed.currentSpaceId() ?? this.space.id;
  }

  /** Each room's space, by room name. */
  spaces(): ReadonlyMap<string, Space> {
    return this.rooms;
  }

  async endSpace(): Promise<void> {
    // a space that never went live is not ended: there is nothing on air to end (409 over HTTP)
    if (this.space.state === 'live') await this.o.server.endSpace(this.space);
  }

  /** Begins a scenario audio fault on the server when the clock enters its window (and its room has a space), ends it when the clock leaves. */
  private audioFaultsAt(t: number): void {
    const f = this.o.audioFaults;
    if (!f) return;
    for (const w of f.windows) {
      const inside = t >= w.from && t < w.to;
      const begun = this.faultsOn.get(w);
      if (inside && !begun) {
        const space = w.room === undefined ? null : this.rooms.get(w.room);
        if (space === undefined) continue; // the room has not opened yet
        this.faultsOn.set(w, faultsFor(w, space?.id ?? null).map((x) => f.injector.begin(x) as SharedFault));
      } else if (!inside && begun) {
        for (const x of begun) f.injector.end(x);
        this.faultsOn.delete(w);
      } else continue;
      // on a cluster the server shares them with every instance, whose fan-outs have the listeners
      this.o.feed.playFaults([...this.faultsOn.values()].flat());
    }
  }

  publish(step: ReplayStep): void {
    const { metrics, feed, server } = this.o;
    this.audioFaultsAt(step.t);
    for (const space of this.rooms.values()) if (!this.takenOver.has(space) && server.leaseLostAt(space.id) !== null) this.takenOver.set(space, step.t);
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
    const now = this.joinTotals();
    let listeners = 0;
    // this instance's real listeners and, in a cluster, the other instances' (their reports, at most a second old)
    for (const space of this.rooms.values()) listeners += space.realListeners + space.peers.real;
    const load = { attempts: now.attempts - this.seen.attempts, admitted: now.admitted - this.seen.admitted, listeners };
    this.seen = now;
    this.o.feed.recordReal(load);
    return load;
  }

  /** Every room that went on air has its recording published: a valid Ogg Opus file with one page for every chunk its space accepted. */
  async recordingAvailable(): Promise<boolean> {
    const spaces = this.rooms.size > 1 ? [...this.wentLive] : [this.space];
    if (spaces.length === 0) return false;
    for (const space of spaces) if (!(await this.recordingComplete(space))) return false;
    return true;
  }

  /**
   * Why the recording is not available, when it is because another instance took a space over: the
   * replay's own instance went silent for a lease (its event loop stalled, or the process was starved of
   * CPU), another instance holds the space now, and the recording is that one's. Null otherwise.
   */
  recordingProblem(): string | null {
    const lost = [...this.takenOver].filter(([space]) => this.rooms.size === 1 || this.wentLive.has(space));
    if (lost.length === 0) return null;
    const tz = this.o.timeZone ?? 'UTC';
    const each = lost.map(([space, t]) => `${this.rooms.size > 1 ? `${space.title}: ` : ''}at ${localClock(t, tz)}`).join(', ');
    return `another instance took the space over (${each}): this replay's own instance, the space's owner, was silent for a whole lease (its event loop stalled or the process got no CPU), so the recording is that instance's — the instances' logs say "took over a space whose owner went silent"`;
  }

  /** One space's recording: published, a valid Ogg Opus file (pages in sequence, CRCs right), one page per chunk the space accepted. */
  async recordingComplete(space: Space): Promise<boolean> {
    const path = this.o.server.recordingPath(space.id);
    if (!path) return false;
    const c = checkOggOpus(await readFile(path));
    return c.ok && c.audioPages === space.chunks && space.chunks > 0;
  }

  finish(): void {
    this.o.metrics.simSpeed.set(0);
    this.o.feed.finish();
  }
}
