import type { Logger } from 'pino';
import type { Clock } from '../clock.js';
import {
  decodeAudioEnvelope,
  decodeControl,
  decodeInstanceStatus,
  encodeAudioEnvelope,
  encodeControl,
  type InstanceCounts,
  type InstanceStatus,
  type ReactionCounts,
  type SpaceAnnouncement,
} from '../protocol/cluster.js';
import type { BusHandlers, SharedTicket, SpaceBus } from '../server/bus.js';
import { RedisLink, type RedisLinkEvents } from './redis.js';

export interface RedisBusOptions {
  url: string;
  instanceId: string;
  /** Key and channel prefix, so several clusters can share one Redis (default `stampede`). */
  prefix?: string;
  logger: Logger;
  clock: Clock;
  events?: RedisLinkEvents;
}

/**
 * The bus over Redis: audio and control messages on two pub/sub channels, each published once and
 * received by every other instance in the order Redis got them; tickets and instance statuses as keys
 * with an expiry. This instance's own messages are delivered to it directly (synchronously, as the
 * embedded bus does) and skipped when Redis echoes them back.
 */
export class RedisBus implements SpaceBus {
  readonly instanceId: string;
  readonly shared = true;
  private readonly link: RedisLink;
  private readonly prefix: string;
  private handlers: BusHandlers | null = null;

  constructor(private readonly o: RedisBusOptions) {
    this.instanceId = o.instanceId;
    this.prefix = o.prefix ?? 'stampede';
    this.link = new RedisLink(o.url, `${this.prefix}:${o.instanceId}`, o.logger.child({ module: 'bus' }), {
      ...o.events,
      onUp: (again) => {
        o.events?.onUp?.(again);
        if (again) this.handlers?.regained?.();
      },
    });
  }

  get up(): boolean {
    return this.link.up;
  }

  private channel(kind: 'audio' | 'ctl'): string {
    return `${this.prefix}:${kind}`;
  }

  async start(handlers: BusHandlers): Promise<void> {
    this.handlers = handlers;
    await this.link.start(this.o.clock);
    await this.link.subscribe(this.channel('audio'), (buf) => {
      const m = decodeAudioEnvelope(buf);
      if (m && m.from !== this.instanceId) this.handlers?.audio(m.spaceId, m.chunk);
    });
    await this.link.subscribe(this.channel('ctl'), (buf) => {
      const m = decodeControl(buf);
      if (!m || m.from === this.instanceId || !this.handlers) return;
      if (m.t === 'space') this.handlers.space(m.space);
      else if (m.t === 'counts') this.handlers.counts(m.from, m.counts);
      else this.handlers.reactions(m.spaceId, m.counts);
    });
  }

  publishAudio(spaceId: string, chunk: Buffer): void {
    // to Redis first: a chunk this instance's listeners heard is already on its way to the others
    this.link.publish(this.channel('audio'), encodeAudioEnvelope(this.instanceId, spaceId, chunk));
    this.handlers?.audio(spaceId, chunk);
  }

  announce(space: SpaceAnnouncement): void {
    this.link.publish(this.channel('ctl'), encodeControl({ t: 'space', from: this.instanceId, space }));
  }

  publishCounts(counts: InstanceCounts): void {
    this.link.publish(this.channel('ctl'), encodeControl({ t: 'counts', from: this.instanceId, counts }));
  }

  publishReactions(spaceId: string, counts: ReactionCounts): void {
    this.link.publish(this.channel('ctl'), encodeControl({ t: 'reactions', from: this.instanceId, spaceId, counts }));
  }

  async putTicket(ticket: string, t: SharedTicket, ttlMs: number): Promise<void> {
    await this.link.putOnce(`${this.prefix}:ticket:${ticket}`, JSON.stringify(t), ttlMs);
  }

  async takeTicket(ticket: string): Promise<SharedTicket | null> {
    const raw = await this.link.take(`${this.prefix}:ticket:${ticket}`);
    if (!raw) return null;
    try {
      const t = JSON.parse(raw) as Partial<SharedTicket>;
      return typeof t.spaceId === 'string' && typeof t.name === 'string' ? { spaceId: t.spaceId, name: t.name } : null;
    } catch {
      return null;
    }
  }

  private lease(spaceId: string): string {
    return `${this.prefix}:owner:${spaceId}`;
  }

  async claim(spaceId: string, ttlMs: number): Promise<boolean> {
    return this.link.putOnce(this.lease(spaceId), this.instanceId, ttlMs);
  }

  async hold(spaceId: string, ttlMs: number): Promise<boolean> {
    return this.link.hold(this.lease(spaceId), this.instanceId, ttlMs);
  }

  putStatus(s: InstanceStatus, ttlMs: number): void {
    this.link.put(`${this.prefix}:instance:${s.id}`, JSON.stringify(s), ttlMs).catch(() => undefined);
  }

  async statuses(): Promise<InstanceStatus[]> {
    const all = await this.link.getAll(`${this.prefix}:instance:`);
    return all.map(decodeInstanceStatus).filter((s): s is InstanceStatus => s !== null).sort((a, b) => a.id.localeCompare(b.id, 'en', { numeric: true }));
  }

  async stop(): Promise<void> {
    await this.link.stop();
  }
}
