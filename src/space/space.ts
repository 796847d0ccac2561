import { DomainError } from './errors.js';

export type SpaceState = 'scheduled' | 'live' | 'ended';
export type Role = 'host' | 'speaker' | 'listener';

export const REACTIONS = ['👏', '😂', '❤️', '🔥', '💯', '🙏'] as const;
export type Reaction = (typeof REACTIONS)[number];

export interface Member {
  readonly id: string;
  readonly name: string;
  role: Role;
}

export interface SpaceSnapshot {
  id: string;
  title: string;
  state: SpaceState;
  scheduledStart: string;
  startedAt: string | null;
  endedAt: string | null;
  host: { name: string };
  listeners: { real: number; virtual: number; total: number };
  speakers: { id: string; name: string }[];
  chunks: number;
}

const TRANSITIONS: Record<SpaceState, readonly SpaceState[]> = {
  // a scheduled space goes live first: ending one that never started is not a transition (409)
  scheduled: ['live'],
  live: ['ended'],
  ended: [],
};

/**
 * One live space: schedule, state machine, roster, speakers, speak requests and reactions.
 * Pure: time comes in as arguments, no I/O, no timers. The transport owns sockets; this owns facts.
 */
export class Space {
  state: SpaceState = 'scheduled';
  startedAt: number | null = null;
  endedAt: number | null = null;
  private readonly members = new Map<string, Member>();
  /** The host and speakers, in the order they came on stage: kept apart so reading them is not O(listeners). */
  private readonly stage = new Map<string, Member>();
  private readonly scheduledIso: string;
  private readonly speakRequests = new Set<string>();
  private pendingReactions = new Map<Reaction, number>();
  private realListenerCount = 0;
  private chunkCount = 0;
  /** Listeners on the other instances of a cluster (real and modelled), as they last reported them. */
  peers = { real: 0, virtual: 0 };
  /** Bumped by every change the snapshot shows except `peers` (state, listeners, stage, chunks): a reader may keep what it built from an unchanged version. */
  private changes = 0;

  constructor(
    readonly id: string,
    readonly title: string,
    readonly hostName: string,
    readonly scheduledStart: number,
  ) {
    this.scheduledIso = new Date(scheduledStart).toISOString();
  }

  /** What the snapshot shows has changed since a reader saw another version (the peers' counts aside: read them). */
  get version(): number {
    return this.changes;
  }

  get realListeners(): number {
    return this.realListenerCount;
  }

  /** Audio chunks accepted so far: the sequence number the next chunk must carry. */
  get chunks(): number {
    return this.chunkCount;
  }

  /** Takes the next audio chunk of the sequence: true (and the sequence moves on) when `seq` is the one expected. */
  acceptChunk(seq: number): boolean {
    if (seq !== this.chunkCount) return false;
    this.chunkCount++;
    this.changes++;
    return true;
  }

  /**
   * A chunk another instance accepted (or this one, through the bus): taken when it is not older than the
   * next one expected. A later one means chunks were lost on the way (Redis away): the sequence jumps.
   */
  acceptDelivered(seq: number): boolean {
    if (seq < this.chunkCount) return false;
    this.chunkCount = seq + 1;
    this.changes++;
    return true;
  }

  transition(to: SpaceState, at: number): void {
    if (!TRANSITIONS[this.state].includes(to)) {
      throw new DomainError('INVALID_TRANSITION', `cannot go from ${this.state} to ${to}`);
    }
    this.state = to;
    this.changes++;
    if (to === 'live') this.startedAt = at;
    if (to === 'ended') this.endedAt = at;
  }

  start(at: number): void {
    this.transition('live', at);
  }

  end(at: number): void {
    this.transition('ended', at);
  }

  /** Adds a member; idempotent for the same id. Throws once the space has ended. */
  join(id: string, name: string, role: Role = 'listener'): Member {
    if (this.state === 'ended') throw new DomainError('SPACE_ENDED', 'the space has ended');
    const existing = this.members.get(id);
    if (existing) return existing;
    const m: Member = { id, name, role };
    this.members.set(id, m);
    if (role !== 'listener') this.stage.set(id, m);
    if (role !== 'host') this.realListenerCount++;
    this.changes++;
    return m;
  }

  /** Removes a member; calling it twice is harmless, so close handlers may race. */
  leave(id: string): boolean {
    const m = this.members.get(id);
    if (!m) return false;
    this.members.delete(id);
    this.stage.delete(id);
    this.speakRequests.delete(id);
    if (m.role !== 'host') this.realListenerCount--;
    this.changes++;
    return true;
  }

  member(id: string): Member | undefined {
    return this.members.get(id);
  }

  requestToSpeak(id: string): boolean {
    const m = this.members.get(id);
    if (!m || m.role !== 'listener') throw new DomainError('NOT_A_LISTENER', 'only a listener can ask to speak');
    if (this.speakRequests.has(id)) return false;
    this.speakRequests.add(id);
    return true;
  }

  grantSpeak(id: string): Member {
    const m = this.members.get(id);
    if (!m || m.role !== 'listener') throw new DomainError('NOT_A_LISTENER', `no listener '${id}' in this space`);
    if (!this.speakRequests.delete(id)) throw new DomainError('NOT_REQUESTED', `listener '${id}' has not asked to speak`);
    m.role = 'speaker';
    this.stage.set(id, m);
    this.changes++;
    return m;
  }

  speakers(): { id: string; name: string }[] {
    const out: { id: string; name: string }[] = [];
    for (const m of this.stage.values()) out.push({ id: m.id, name: m.name });
    return out;
  }

  react(emoji: string): void {
    if (!(REACTIONS as readonly string[]).includes(emoji)) throw new DomainError('BAD_EMOJI', `unknown reaction '${emoji}'`);
    const r = emoji as Reaction;
    this.pendingReactions.set(r, (this.pendingReactions.get(r) ?? 0) + 1);
  }

  /** Reactions since the last call, aggregated; empty when there were none. */
  takeReactions(): Partial<Record<Reaction, number>> | null {
    if (this.pendingReactions.size === 0) return null;
    const out = Object.fromEntries(this.pendingReactions) as Partial<Record<Reaction, number>>;
    this.pendingReactions = new Map();
    return out;
  }

  /** Every listener of the space, on this instance and on the others of a cluster. */
  listenerCounts(virtualListeners = 0): { real: number; virtual: number; total: number } {
    const real = this.realListenerCount + this.peers.real;
    const virtual = virtualListeners + this.peers.virtual;
    return { real, virtual, total: real + virtual };
  }

  /** The space as the API shows it; `virtualListeners` are the replay model's crowd inside (a count, never objects). */
  snapshot(virtualListeners = 0): SpaceSnapshot {
    const iso = (t: number | null): string | null => (t === null ? null : new Date(t).toISOString());
    return {
      id: this.id,
      title: this.title,
      state: this.state,
      scheduledStart: this.scheduledIso,
      startedAt: iso(this.startedAt),
      endedAt: iso(this.endedAt),
      host: { name: this.hostName },
      listeners: this.listenerCounts(virtualListeners),
      speakers: this.speakers(),
      chunks: this.chunks,
    };
  }
}

/** All spaces of one server. Ids come from an injected generator so tests and replays are repeatable. */
export class SpaceStore {
  private readonly spaces = new Map<string, Space>();

  constructor(private readonly newId: () => string) {}

  create(input: { title: string; hostName: string; scheduledStart: number }): Space {
    const s = new Space(this.newId(), input.title, input.hostName, input.scheduledStart);
    this.spaces.set(s.id, s);
    return s;
  }

  /** A space another instance created, under that instance's id; the one already known if there is one. */
  adopt(input: { id: string; title: string; hostName: string; scheduledStart: number }): Space {
    let s = this.spaces.get(input.id);
    if (!s) {
      s = new Space(input.id, input.title, input.hostName, input.scheduledStart);
      this.spaces.set(s.id, s);
    }
    return s;
  }

  get(id: string): Space | undefined {
    return this.spaces.get(id);
  }

  list(): Space[] {
    return [...this.spaces.values()];
  }

  get size(): number {
    return this.spaces.size;
  }

  /**
   * One page of spaces in creation order: at most `limit` after the space with id `after` (from the
   * start when absent). `next` is the id to ask for the page after, null on the last page; null for an
   * `after` that names no space here (forgotten since, or never here).
   */
  page(limit: number, after?: string): { spaces: Space[]; next: string | null } | null {
    // such a cursor has no place in the order; reading it as the start sent a pager whose cursor was
    // forgotten between two pages back to page one, round and round while spaces ended
    if (after !== undefined && !this.spaces.has(after)) return null;
    const out: Space[] = [];
    let started = after === undefined;
    let more = false;
    for (const [id, s] of this.spaces) {
      if (!started) {
        started = id === after;
        continue;
      }
      if (out.length === limit) {
        more = true;
        break;
      }
      out.push(s);
    }
    return { spaces: out, next: more ? out.at(-1)!.id : null };
  }

  /** Forgets a space (an ended one past the number kept); the caller owns anything else it held. */
  forget(id: string): boolean {
    return this.spaces.delete(id);
  }

  /** The ended spaces in the order they were created (oldest first). */
  ended(): Space[] {
    return this.list().filter((s) => s.state === 'ended');
  }

  countByState(): Record<SpaceState, number> {
    const c: Record<SpaceState, number> = { scheduled: 0, live: 0, ended: 0 };
    for (const s of this.spaces.values()) c[s.state]++;
    return c;
  }
}
