import { randomFillSync } from 'node:crypto';

export interface Ticket {
  spaceId: string;
  name: string;
  expiresAt: number;
  /** The address the ticket was issued to: its unused tickets are bounded (docs/reliability.md #23). */
  address: string;
}

/**
 * Single-use, short-lived join tickets. A ticket is 24 random bytes, base64url: 32 characters.
 * Every ticket lives for the same TTL, so they expire in the order they were issued: a FIFO of issue
 * order lets expiry run in amortised O(1), and per-space counts make the cap check O(1) too.
 */
export class TicketBook {
  private readonly tickets = new Map<string, Ticket>();
  private readonly perSpace = new Map<string, number>();
  private readonly perAddress = new Map<string, number>();
  private order: string[] = [];
  private head = 0;
  /** Entropy is drawn from the OS in blocks of 256 tickets rather than one syscall per join. */
  private readonly entropy = Buffer.alloc(24 * 256);
  private entropyAt = this.entropy.length;

  constructor(private readonly ttlMs: number) {}

  private forget(ticket: string, t: Ticket): void {
    this.tickets.delete(ticket);
    decrement(this.perSpace, t.spaceId);
    decrement(this.perAddress, t.address);
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

  issue(spaceId: string, name: string, now: number, address = ''): { ticket: string; expiresAt: number } {
    this.sweep(now);
    if (this.entropyAt === this.entropy.length) {
      randomFillSync(this.entropy);
      this.entropyAt = 0;
    }
    const ticket = this.entropy.toString('base64url', this.entropyAt, this.entropyAt + 24);
    this.entropyAt += 24;
    const expiresAt = now + this.ttlMs;
    this.tickets.set(ticket, { spaceId, name, expiresAt, address });
    this.perSpace.set(spaceId, (this.perSpace.get(spaceId) ?? 0) + 1);
    this.perAddress.set(address, (this.perAddress.get(address) ?? 0) + 1);
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

  /** Tickets issued to an address and not yet used or expired. */
  pendingFrom(address: string, now: number): number {
    this.sweep(now);
    return this.perAddress.get(address) ?? 0;
  }

  get size(): number {
    return this.tickets.size;
  }
}

function decrement(m: Map<string, number>, key: string): void {
  const n = (m.get(key) ?? 1) - 1;
  if (n <= 0) m.delete(key);
  else m.set(key, n);
}
