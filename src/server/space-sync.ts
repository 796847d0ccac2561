import type { Logger } from 'pino';
import { nextSlot, type Clock } from '../clock.js';
import type { InstanceCounts, InstanceStatus, ReactionCounts, SharedFault, SpaceAnnouncement } from '../protocol/index.js';
import { CLOSE } from '../protocol/index.js';
import type { Space, SpaceStore } from '../space/index.js';
import type { JoinGate } from './admission.js';
import type { BusHandlers, SpaceBus } from './bus.js';
import type { HostKeys } from './host-auth.js';

/** What the space-state seam calls back into the server when another instance changes something. */
export interface SpaceSyncHooks {
  /** A space another instance created or started is now live here too. */
  live(space: Space): Promise<void>;
  /** A space ended on another instance: close this instance's listeners (with the owner's close code, when it said one). */
  ended(space: Space, closeCode?: number): Promise<void>;
  /** The audio faults another instance's replay has in force now (none: it ended them, or went silent). */
  peerFaults(from: string, faults: readonly SharedFault[]): void;
  /** A chunk (this instance's own included) to fan out to this instance's listeners. */
  audio(spaceId: string, chunk: Buffer): void;
  /** Reactions sent on another instance, for this instance's listeners. */
  reactions(space: Space, counts: ReactionCounts): void;
  /** This instance's own state for GET /api/v1/cluster. */
  status(): Pick<InstanceStatus, 'url' | 'state' | 'listeners' | 'connections'>;
  /** Whether a built-in synthetic host speaks in a space this instance owns. */
  synthetic(spaceId: string): boolean;
  /** This instance now owns a live space whose owner went silent: continue its recording (and its synthetic host). */
  takeOver(space: Space, from: { owner: string; synthetic: boolean }): Promise<void>;
  /** Another instance holds the lease of a space this instance owned: stop writing and hosting it. */
  lost(space: Space): Promise<void>;
}

/**
 * The space-state seam of one instance. With the embedded bus it only keeps host-token hashes; with a
 * shared bus it also announces the spaces this instance created (at each change and every interval,
 * so an instance that starts later or a Redis that restarted catches up), applies the announcements
 * of others (state only moves forward: scheduled → live → ended), sums the listener counts the other
 * instances report (an instance silent for three intervals counts for nothing), and publishes this
 * instance's status.
 */
export class SpaceSync {
  private readonly owned = new Set<string>();
  /** The last announcement heard per space owned elsewhere: when, from which owner, with a synthetic host or not. */
  private readonly heard = new Map<string, { at: number; owner: string; synthetic: boolean }>();
  /** A lease check per space at a time. */
  private readonly leasing = new Set<string>();
  private readonly peers = new Map<string, { at: number; counts: InstanceCounts }>();
  private readonly startedAt: number;
  private loop: Promise<void> | null = null;
  private readonly abort = new AbortController();
  private lastPeerCount = -1;
  /** The join gate and audio faults last sent with the counts (a replay's instance only). */
  private sentGate: JoinGate | null = null;
  private sentFaults = '[]';
  /** The close code each space created here was ended with, when not the plain end (a crash: 4003). */
  private readonly endCodes = new Map<string, number>();

  constructor(
    private readonly o: {
      bus: SpaceBus;
      spaces: SpaceStore;
      hostKeys: HostKeys;
      clock: Clock;
      log: Logger;
      intervalMs: number;
      hooks: SpaceSyncHooks;
      /** The local simulated time, if this instance runs a replay. */
      localSimTime: () => string | null;
      /** The local replay's time zone, if this instance runs one. */
      localSimTimeZone: () => string | null;
      /** The replay model's join gate, if this instance runs a replay (null otherwise). */
      localGate: () => JoinGate | null;
      /** The replay's audio faults in force now, if this instance runs one (none otherwise). */
      localFaults: () => readonly SharedFault[];
      /** The replay's modelled listeners in a space, if this instance runs a replay. */
      modelledListeners: (spaceId: string) => number;
      onPeers?: (n: number) => void;
    },
  ) {
    this.startedAt = o.clock.now();
  }

  get shared(): boolean {
    return this.o.bus.shared;
  }

  get instanceId(): string {
    return this.o.bus.instanceId;
  }

  owns(space: Space): boolean {
    return this.owned.has(space.id);
  }

  /** The simulated time another instance's replay reports, when this one runs none. */
  peerSimTime(): string | null {
    for (const p of this.peers.values()) if (p.counts.simTime) return p.counts.simTime;
    return null;
  }

  /** The time zone of another instance's replay, when this one runs none. */
  peerSimTimeZone(): string | null {
    for (const p of this.peers.values()) if (p.counts.simTimeZone) return p.counts.simTimeZone;
    return null;
  }

  /** The join gate another instance's replay reports, when this one runs none (null: no replay in the cluster). */
  peerGate(): JoinGate | null {
    for (const p of this.peers.values()) if (p.counts.gate) return p.counts.gate;
    return null;
  }

  async start(): Promise<void> {
    const handlers: BusHandlers = {
      audio: (spaceId, chunk) => this.o.hooks.audio(spaceId, chunk),
      space: (a) => void this.apply(a).catch((err: unknown) => this.o.log.error({ err, spaceId: a.id }, 'applying a space announcement failed')),
      counts: (from, counts) => {
        this.peers.set(from, { at: this.o.clock.now(), counts });
        this.o.hooks.peerFaults(from, counts.faults ?? []);
        this.sumPeers();
      },
      reactions: (spaceId, counts) => {
        const space = this.o.spaces.get(spaceId);
        if (space && space.state !== 'ended') this.o.hooks.reactions(space, counts);
      },
      // announcements were missed while Redis was away: the owners get a fresh grace period to be heard
      regained: () => {
        const now = this.o.clock.now();
        for (const h of this.heard.values()) h.at = now;
      },
    };
    await this.o.bus.start(handlers);
    if (!this.shared) return;
    this.loop = (async () => {
      const t0 = this.o.clock.now();
      // only an instance that runs a replay has a gate to watch between the intervals
      const ticks = this.o.localGate() ? 10 : 1;
      const tick = this.o.intervalMs / ticks;
      // the ticks a stall or a busy machine made it miss are skipped, not run back to back (each says the
      // state as it is now); when one of them was an interval's, the next tick is: the lease renewal, the
      // announcements and the status do not wait another interval
      for (let k = 0, last = -ticks; !this.abort.signal.aborted; ) {
        if (k - last >= ticks) {
          last = k;
          this.every();
        } else this.gateMoved();
        k = nextSlot(t0, tick, k, this.o.clock.now());
        await this.o.clock.sleep(t0 + k * tick - this.o.clock.now(), this.abort.signal);
      }
    })();
  }

  /** A space created here (its host token issued): in a cluster, the news, and the lease on it. */
  created(space: Space): void {
    this.owned.add(space.id);
    if (this.shared) void this.o.bus.claim(space.id, this.leaseMs).catch(() => undefined);
    this.changed(space);
  }

  /** A space's owner renews its lease every interval; three missed intervals and another instance takes it. */
  private get leaseMs(): number {
    return this.o.intervalMs * 3;
  }

  /** A space changed state here (ended with `closeCode`, say a crash's 4003); the other instances hear it at once. */
  changed(space: Space, closeCode?: number): void {
    if (closeCode !== undefined && closeCode !== CLOSE.SPACE_ENDED) this.endCodes.set(space.id, closeCode);
    const hostTokenHash = this.o.hostKeys.hashOf(space.id);
    if (!this.shared || !hostTokenHash) return;
    const endCode = space.state === 'ended' ? this.endCodes.get(space.id) : undefined;
    this.o.bus.announce({
      id: space.id,
      title: space.title,
      hostName: space.hostName,
      scheduledStart: space.scheduledStart,
      state: space.state,
      startedAt: space.startedAt,
      endedAt: space.endedAt,
      hostTokenHash,
      owner: this.owned.has(space.id) ? this.instanceId : (this.heard.get(space.id)?.owner ?? this.instanceId),
      synthetic: this.owned.has(space.id) ? this.o.hooks.synthetic(space.id) : (this.heard.get(space.id)?.synthetic ?? false),
      chunks: space.chunks,
      ...(endCode !== undefined ? { closeCode: endCode } : {}),
    });
  }

  /** A space forgotten here (long ended): nothing more to say about it. */
  forget(spaceId: string): void {
    this.endCodes.delete(spaceId);
  }

  private async apply(a: SpaceAnnouncement): Promise<void> {
    const space = this.o.spaces.adopt({ id: a.id, title: a.title, hostName: a.hostName, scheduledStart: a.scheduledStart });
    this.o.hostKeys.learn(a.id, a.hostTokenHash);
    if (a.owner !== this.instanceId) this.heard.set(a.id, { at: this.o.clock.now(), owner: a.owner, synthetic: a.synthetic });
    if (a.state !== 'scheduled' && space.state === 'scheduled') {
      space.start(a.startedAt ?? this.o.clock.now());
      await this.o.hooks.live(space);
    }
    if (a.state === 'ended' && space.state === 'live') {
      // the owner's last chunks travel on the audio channel and may arrive after its "ended": its count is final
      // (only an end settles the count — mid-air, a count ahead of the delivered chunks would skip them)
      if (a.chunks > space.chunks) space.acceptDelivered(a.chunks - 1);
      space.end(a.endedAt ?? this.o.clock.now());
      await this.o.hooks.ended(space, a.closeCode);
    }
  }

  private every(): void {
    for (const s of this.o.spaces.list()) {
      if (this.owned.has(s.id)) this.changed(s);
      if (s.state !== 'ended') this.lease(s);
    }
    this.publishCounts();
    this.sumPeers();
    const now = this.o.clock.now();
    this.o.bus.putStatus({ id: this.instanceId, ...this.o.hooks.status(), startedAt: this.startedAt, at: now }, this.o.intervalMs * 3);
  }

  /** This instance's listeners per space, and the replay's model if it runs one, to every other instance. */
  private publishCounts(): void {
    const real: Record<string, number> = {};
    const virtual: Record<string, number> = {};
    for (const s of this.o.spaces.list()) {
      if (s.state === 'ended') continue;
      if (s.realListeners) real[s.id] = s.realListeners;
      const modelled = this.o.modelledListeners(s.id);
      if (modelled) virtual[s.id] = modelled;
    }
    const gate = this.o.localGate();
    const faults = this.o.localFaults();
    const zone = this.o.localSimTimeZone();
    this.sentGate = gate;
    this.sentFaults = JSON.stringify(faults);
    this.o.bus.publishCounts({ real, virtual, simTime: this.o.localSimTime(), ...(zone ? { simTimeZone: zone } : {}), ...(gate ? { gate } : {}), ...(faults.length > 0 ? { faults: [...faults] } : {}) });
  }

  /**
   * An instance that runs a replay sends its counts again as soon as the model's join gate moves (checked
   * every tenth of the interval), so the other instances gate real joins by a verdict at most that old:
   * once a second would be half a simulated hour late at 1800×.
   */
  private gateMoved(): void {
    const g = this.o.localGate();
    const s = this.sentGate;
    if (g && (!s || Math.abs(g.availability - s.availability) > 0.005 || Math.abs(g.latencyMs - s.latencyMs) > 50)) this.publishCounts();
    else if (JSON.stringify(this.o.localFaults()) !== this.sentFaults) this.publishCounts();
  }

  /**
   * The owner renews the lease of a space that is not over; another instance whose owner has been
   * silent for three intervals tries to take it (SET NX: one instance wins) and takes the space over.
   * An owner that finds the lease held by another stops writing and hosting it.
   */
  private lease(space: Space): void {
    const mine = this.owned.has(space.id);
    const h = this.heard.get(space.id);
    if (this.leasing.has(space.id)) return;
    if (!mine && (!h || this.o.clock.now() - h.at <= this.leaseMs || space.state !== 'live')) return;
    this.leasing.add(space.id);
    void (async () => {
      if (mine) {
        if (await this.o.bus.hold(space.id, this.leaseMs)) return;
        this.owned.delete(space.id);
        this.o.log.error({ spaceId: space.id }, 'another instance holds the lease of a space this one owned: no longer writing or hosting it');
        await this.o.hooks.lost(space);
        return;
      }
      if (!(await this.o.bus.claim(space.id, this.leaseMs))) return;
      this.owned.add(space.id);
      this.o.log.warn({ spaceId: space.id, from: h!.owner, silentMs: this.o.clock.now() - h!.at }, 'took over a space whose owner went silent');
      this.heard.delete(space.id);
      await this.o.hooks.takeOver(space, h!);
      this.changed(space);
    })()
      .catch((err: unknown) => this.o.log.warn({ err, spaceId: space.id }, 'space lease check failed'))
      .finally(() => this.leasing.delete(space.id));
  }

  /** Each space's listeners on the other instances, from the reports no older than three intervals. */
  private sumPeers(): void {
    const now = this.o.clock.now();
    for (const [from, p] of this.peers)
      if (now - p.at > this.o.intervalMs * 3) {
        this.peers.delete(from);
        this.o.hooks.peerFaults(from, []);
      }
    for (const s of this.o.spaces.list()) {
      let real = 0;
      let virtual = 0;
      for (const p of this.peers.values()) {
        real += p.counts.real[s.id] ?? 0;
        virtual += p.counts.virtual[s.id] ?? 0;
      }
      s.peers.real = real;
      s.peers.virtual = virtual;
    }
    if (this.peers.size !== this.lastPeerCount) {
      this.lastPeerCount = this.peers.size;
      this.o.onPeers?.(this.peers.size);
    }
  }

  /** Every instance's status (this one alone with the embedded bus). */
  async statuses(): Promise<InstanceStatus[]> {
    if (!this.shared) return [{ id: this.instanceId, ...this.o.hooks.status(), startedAt: this.startedAt, at: this.o.clock.now() }];
    return this.o.bus.statuses();
  }

  async stop(): Promise<void> {
    this.abort.abort();
    await this.loop;
    await this.o.bus.stop();
  }
}
