import type { InstanceCounts, InstanceStatus, ReactionCounts, SpaceAnnouncement } from '../protocol/cluster.js';

/** A join ticket as every instance sees it. */
export interface SharedTicket {
  spaceId: string;
  name: string;
}

/** What the bus hands to this instance. Audio includes this instance's own chunks; the rest comes from others. */
export interface BusHandlers {
  audio(spaceId: string, chunk: Buffer): void;
  space(a: SpaceAnnouncement): void;
  counts(from: string, c: InstanceCounts): void;
  reactions(spaceId: string, counts: ReactionCounts): void;
  /** The link to the others came back after an outage (their announcements were missed meanwhile). */
  regained?(): void;
}

/**
 * The seam between one instance and the others (the audio plane and the space state). The embedded
 * LocalBus keeps a single process exactly as it was: a chunk published is fanned out at once, in the
 * same call, and nothing leaves the process. RedisBus (src/cluster) shares it all through Redis.
 */
export interface SpaceBus {
  readonly instanceId: string;
  /** False for the embedded bus: tickets, counts and spaces stay in this process. */
  readonly shared: boolean;
  start(handlers: BusHandlers): Promise<void>;
  stop(): Promise<void>;
  /** An accepted chunk, fanned out by every instance (this one included, synchronously) to its own listeners. */
  publishAudio(spaceId: string, chunk: Buffer): void;
  announce(space: SpaceAnnouncement): void;
  publishCounts(counts: InstanceCounts): void;
  publishReactions(spaceId: string, counts: ReactionCounts): void;
  putTicket(ticket: string, t: SharedTicket, ttlMs: number): Promise<void>;
  takeTicket(ticket: string): Promise<SharedTicket | null>;
  /**
   * The lease on a space's ownership: `claim` takes it only when nobody holds it (a new space, or an
   * owner that stopped renewing); `hold` renews it for its holder (taking it again if it vanished,
   * as after a Redis restart) and answers false when another instance holds it now.
   */
  claim(spaceId: string, ttlMs: number): Promise<boolean>;
  hold(spaceId: string, ttlMs: number): Promise<boolean>;
  putStatus(s: InstanceStatus, ttlMs: number): void;
  statuses(): Promise<InstanceStatus[]>;
}

/** The embedded default: one process, nothing shared, audio fanned out in the publishing call. */
export class LocalBus implements SpaceBus {
  readonly shared = false;
  private handlers: BusHandlers | null = null;
  private status: InstanceStatus | null = null;

  constructor(readonly instanceId = 'local') {}

  async start(handlers: BusHandlers): Promise<void> {
    this.handlers = handlers;
  }

  async stop(): Promise<void> {
    this.handlers = null;
  }

  publishAudio(spaceId: string, chunk: Buffer): void {
    this.handlers?.audio(spaceId, chunk);
  }

  announce(): void {}
  publishCounts(): void {}
  publishReactions(): void {}

  async putTicket(): Promise<void> {
    throw new Error('the embedded bus keeps tickets in the server');
  }

  async takeTicket(): Promise<SharedTicket | null> {
    return null;
  }

  async claim(): Promise<boolean> {
    return true;
  }

  async hold(): Promise<boolean> {
    return true;
  }

  putStatus(s: InstanceStatus): void {
    this.status = s;
  }

  async statuses(): Promise<InstanceStatus[]> {
    return this.status ? [this.status] : [];
  }
}
