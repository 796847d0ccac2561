import { describe, expect, it } from 'vitest';
import { TicketBook } from '../../src/server/tickets.js';

describe('TicketBook', () => {
  it('redeems a ticket once, refuses expired ones, and counts only live tickets per space', () => {
    const book = new TicketBook(30_000);
    const a = book.issue('s1', 'a', 0);
    const b = book.issue('s1', 'b', 10_000);
    book.issue('s2', 'c', 10_000);
    expect(book.pendingFor('s1', 10_000)).toBe(2);
    expect(book.take(a.ticket, 1_000)).toMatchObject({ spaceId: 's1', name: 'a' });
    expect(book.take(a.ticket, 1_000)).toBeNull();
    expect(book.pendingFor('s1', 10_000)).toBe(1);
    expect(book.pendingFor('s1', 40_001)).toBe(0); // b expired at 40,000
    expect(book.take(b.ticket, 40_001)).toBeNull();
    expect(book.size).toBe(0);
    expect(book.take('x'.repeat(32), 0)).toBeNull();
  });

  it('forgets expired tickets as time passes, so memory does not grow with unused tickets', () => {
    const book = new TicketBook(1_000);
    const seen = new Set<string>();
    for (let t = 0; t < 100_000; t++) seen.add(book.issue('s', 'n', t).ticket);
    expect(seen.size).toBe(100_000);
    expect([...seen].every((k) => /^[A-Za-z0-9_-]{32}$/.test(k))).toBe(true);
    expect(book.size).toBeLessThanOrEqual(1_001);
    expect(book.pendingFor('s', 100_000)).toBeLessThanOrEqual(1_001);
  });
});
