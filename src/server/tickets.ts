import { randomBytes } from 'node:crypto';

export interface Ticket {
  spaceId: string;
  name: string;
  expiresAt: number;
}

/** Single-use, short-lived join tickets. A ticket is 24 random bytes, base64url: 32 characters. */
export class TicketBook {
  private readonly tickets = new Map<string, Ticket>();

  constructor(private readonly ttlMs: number) {}

  issue(spaceId: string, name: string, now: number): { ticket: string; expiresAt: number } {
    const ticket = randomBytes(24).toString('base64url');
    const expiresAt = now + this.ttlMs;
    this.tickets.set(ticket, { spaceId, name, expiresAt });
    return { ticket, expiresAt };
  }

  /** Redeems a ticket once; unknown, used and expired tickets all give null. */
  take(ticket: string, now: number): Ticket | null {
    if (ticket.length !== 32) return null;
    const t = this.tickets.get(ticket);
    if (!t) return null;
    this.tickets.delete(ticket);
    return t.expiresAt >= now ? t : null;
  }

  pendingFor(spaceId: string): number {
    let n = 0;
    for (const t of this.tickets.values()) if (t.spaceId === spaceId) n++;
    return n;
  }

  sweep(now: number): void {
    for (const [k, t] of this.tickets) if (t.expiresAt < now) this.tickets.delete(k);
  }

  get size(): number {
    return this.tickets.size;
  }
}
