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
 * order lets expiry run in amortised O(1), and per-space counts make the cap check O(1) too. A ticket's
 * facts live in columns indexed by its place in that order (no object per ticket for the 30 s it waits);
 * the map only takes a ticket to its place. A Ticket object is built when one is redeemed.
 */
export class TicketBook {
  /** ticket → its place in the issue order (`base` + index into the columns). */
  private readonly index = new Map<string, number>();
  private readonly perSpace = new Map<string, number>();
  private readonly perAddress = new Map<string, number>();
  /** The columns, in issue order from the oldest kept: the ticket (undefined once taken), its space, name, address and expiry. */
  private keys: (string | undefined)[] = [];
  private spaces: string[] = [];
  private names: string[] = [];
  private addresses: string[] = [];
  private expiries: number[] = [];
  /** The place of keys[0] in the issue order. */
  private base = 0;
  /** keys[head] is the oldest ticket not yet swept. */
  private head = 0;
  /** Entropy is drawn from the OS in blocks of 256 tickets rather than one syscall per join. */
  private readonly entropy = Buffer.alloc(24 * 256);
  private entropyAt = this.entropy.length;

  constructor(private readonly ttlMs: number) {}

  private forget(i: number): void {
    this.index.delete(this.keys[i]!);
    this.keys[i] = undefined;
    decrement(this.perSpace, this.spaces[i]!);
    decrement(this.perAddress, this.addresses[i]!);
  }

  /** Drops expired tickets from the front of the issue order. */
  private sweep(now: number): void {
    const keys = this.keys;
    while (this.head < keys.length) {
      const live = keys[this.head] !== undefined;
      if (live && this.expiries[this.head]! >= now) break;
      if (live) this.forget(this.head);
      this.head++;
    }
    if (this.head > 1024 && this.head * 2 > keys.length) {
      const h = this.head;
      this.keys = keys.slice(h);
      this.spaces = this.spaces.slice(h);
      this.names = this.names.slice(h);
      this.addresses = this.addresses.slice(h);
      this.expiries = this.expiries.slice(h);
      this.base += h;
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
    this.index.set(ticket, this.base + this.keys.length);
    this.keys.push(ticket);
    this.spaces.push(spaceId);
    this.names.push(name);
    this.addresses.push(address);
    this.expiries.push(expiresAt);
    this.perSpace.set(spaceId, (this.perSpace.get(spaceId) ?? 0) + 1);
    this.perAddress.set(address, (this.perAddress.get(address) ?? 0) + 1);
    return { ticket, expiresAt };
  }

  /** Redeems a ticket once; unknown, used and expired tickets all give null. */
  take(ticket: string, now: number): Ticket | null {
    if (ticket.length !== 32) return null;
    const at = this.index.get(ticket);
    if (at === undefined) return null;
    const i = at - this.base;
    const t: Ticket = { spaceId: this.spaces[i]!, name: this.names[i]!, expiresAt: this.expiries[i]!, address: this.addresses[i]! };
    this.forget(i);
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
    return this.index.size;
  }
}

function decrement(m: Map<string, number>, key: string): void {
  const n = (m.get(key) ?? 1) - 1;
  if (n <= 0) m.delete(key);
  else m.set(key, n);
}
