import { randomFillSync } from 'node:crypto';

export interface Ticket {
  spaceId: string;
  name: string;
  expiresAt: number;
}

/**
 * Single-use, short-lived join tickets. A ticket is 24 random bytes, base64url: 32 characters.
 * Every ticket lives for the same TTL, so they expire in the order they were issued: a FIFO of issue
 * order lets expiry run in amortised O(1), and per-space counts make the cap check O(1) too.
 */
export class TicketBook {
  private readonly tickets = new Map<string, Ticket>();
  private readonly perSpace = new Map<string, number>();
  private order: string[] = [];
  private head = 0;
  /** Entropy is drawn from the OS in blocks of 256 tickets rather than one syscall per join. */
  private readonly entropy = Buffer.alloc(24 * 256);
  private entropyAt = this.entropy.length;

  constructor(private readonly ttlMs: number) {}

  private forget(ticket: string, t: Ticket): void {
    this.tickets.delete(ticket);
    const n = (this.perSpace.get(t.spaceId) ?? 1) - 1;
    if (n <= 0) this.perSpace.delete(t.spaceId);
    else this.perSpace.set(t.spaceId, n);
  }

  /** Drops expired tickets from the front of the issue order. */
  private sweep(now: number): void {
    while (this.head < this.order.length) {
      const key = this.order[this.head]!;
      const t = this.tickets.get(key);
      if (t && t.expiresAt >= now) break;
      if (t) this.forget(key, t);
      this.head++;
    }
    if (this.head > 1024 && this.head * 2 > this.order.length) {
      this.order = this.order.slice(this.head);
      this.head = 0;
    }
  }

  issue(spaceId: string, name: string, now: number): { ticket: string; expiresAt: number } {
    this.sweep(now);
    if (this.entropyAt === this.entropy.length) {
      randomFillSync(this.entropy);
      this.entropyAt = 0;
    }
    const ticket = this.entropy.toString('base64url', this.entropyAt, this.entropyAt + 24);
    this.entropyAt += 24;
    const expiresAt = now + this.ttlMs;
    this.tickets.set(ticket, { spaceId, name, expiresAt });
    this.perSpace.set(spaceId, (this.perSpace.get(spaceId) ?? 0) + 1);
    this.order.push(ticket);
    return { ticket, expiresAt };
  }

  /** Redeems a ticket once; unknown, used and expired tickets all give null. */
  take(ticket: string, now: number): Ticket | null {
    if (ticket.length !== 32) return null;
    const t = this.tickets.get(ticket);
    if (!t) return null;
    this.forget(ticket, t);
    return t.expiresAt >= now ? t : null;
  }

  /** Tickets issued for a space and not yet used or expired. */
  pendingFor(spaceId: string, now: number): number {
    this.sweep(now);
    return this.perSpace.get(spaceId) ?? 0;
  }

  get size(): number {
    return this.tickets.size;
  }
}
