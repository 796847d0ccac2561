import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DomainError, Space, SpaceStore } from '../../src/space/index.js';

describe('Space', () => {
  it('moves scheduled → live → ended and refuses anything else with INVALID_TRANSITION', () => {
    const s = new Space('a', 't', 'h', 0);
    expect(() => s.transition('scheduled', 1)).toThrow(DomainError);
    // ending a space that never went live is not a transition (docs/protocol.md: 409)
    expect(() => s.end(5)).toThrowError(expect.objectContaining({ code: 'INVALID_TRANSITION' }));
    s.start(10);
    expect(() => s.start(11)).toThrowError(expect.objectContaining({ code: 'INVALID_TRANSITION' }));
    s.end(20);
    expect(() => s.end(21)).toThrowError(expect.objectContaining({ code: 'INVALID_TRANSITION' }));
    expect(() => s.join('x', 'x')).toThrowError(expect.objectContaining({ code: 'SPACE_ENDED' }));
    expect(s.snapshot()).toMatchObject({ state: 'ended', startedAt: new Date(10).toISOString(), endedAt: new Date(20).toISOString() });
  });

  it('moves its version on every change its snapshot shows, so a body kept per version is never stale', () => {
    const op = fc.record({ kind: fc.constantFrom('join' as const, 'leave' as const, 'ask' as const, 'grant' as const, 'chunk' as const, 'deliver' as const, 'start' as const, 'end' as const, 'react' as const), id: fc.integer({ min: 0, max: 5 }) });
    fc.assert(
      fc.property(fc.array(op, { maxLength: 100 }), (ops) => {
        const s = new Space('a', 't', 'h', 0);
        let t = 0;
        for (const o of ops) {
          const before = { version: s.version, shown: JSON.stringify(s.snapshot(7)) };
          try {
            if (o.kind === 'join') s.join(`c${o.id}`, 'n');
            else if (o.kind === 'leave') s.leave(`c${o.id}`);
            else if (o.kind === 'ask') s.requestToSpeak(`c${o.id}`);
            else if (o.kind === 'grant') s.grantSpeak(`c${o.id}`);
            else if (o.kind === 'chunk') s.acceptChunk(s.chunks + (o.id % 2));
            else if (o.kind === 'deliver') s.acceptDelivered(s.chunks + o.id - 2);
            else if (o.kind === 'start') s.start(++t);
            else if (o.kind === 'end') s.end(++t);
            else s.react('👏');
          } catch {
            // a refused operation changes nothing
          }
          if (JSON.stringify(s.snapshot(7)) !== before.shown) expect(s.version).not.toBe(before.version);
        }
      }),
    );
  });

  it('keeps the roster count and the stage equal to the members present, whatever order joins, leaves and grants come in', () => {
    const op = fc.record({ kind: fc.constantFrom('join' as const, 'leave' as const, 'ask' as const, 'grant' as const), id: fc.integer({ min: 0, max: 20 }) });
    fc.assert(
      fc.property(fc.array(op, { maxLength: 200 }), (ops) => {
        const s = new Space('a', 't', 'h', 0);
        s.join('host', 'h', 'host');
        const present = new Set<number>();
        const asked = new Set<number>();
        const onStage = new Set<number>();
        for (const o of ops) {
          const id = `c${o.id}`;
          if (o.kind === 'join') {
            s.join(id, 'n');
            present.add(o.id);
          } else if (o.kind === 'leave') {
            s.leave(id);
            present.delete(o.id);
            asked.delete(o.id);
            onStage.delete(o.id);
          } else if (o.kind === 'ask') {
            if (present.has(o.id) && !onStage.has(o.id)) {
              s.requestToSpeak(id);
              asked.add(o.id);
            }
          } else if (asked.has(o.id)) {
            s.grantSpeak(id);
            asked.delete(o.id);
            onStage.add(o.id);
          } else {
            expect(() => s.grantSpeak(id)).toThrow();
          }
          expect(s.realListeners).toBe(present.size);
          expect(s.speakers().map((m) => m.id).sort()).toEqual(['host', ...[...onStage].map((i) => `c${i}`)].sort());
        }
        expect(s.snapshot(1_000).listeners).toEqual({ real: present.size, virtual: 1_000, total: present.size + 1_000 });
      }),
    );
  });

  it('grants the floor only to a listener who asked, and aggregates reactions', () => {
    const s = new Space('a', 't', 'h', 0);
    s.join('h', 'host', 'host');
    s.join('l', 'lin');
    expect(() => s.grantSpeak('l')).toThrowError(expect.objectContaining({ code: 'NOT_REQUESTED' }));
    expect(s.requestToSpeak('l')).toBe(true);
    expect(s.requestToSpeak('l')).toBe(false);
    expect(s.grantSpeak('l').role).toBe('speaker');
    expect(s.speakers().map((x) => x.id).sort()).toEqual(['h', 'l']);
    s.react('🔥');
    s.react('🔥');
    s.react('👏');
    expect(() => s.react('💩')).toThrowError(expect.objectContaining({ code: 'BAD_EMOJI' }));
    expect(s.takeReactions()).toEqual({ '🔥': 2, '👏': 1 });
    expect(s.takeReactions()).toBeNull();
  });

  it('stores spaces under ids from the injected generator', () => {
    let n = 0;
    const store = new SpaceStore(() => `s${++n}`);
    store.create({ title: 'a', hostName: 'h', scheduledStart: 0 }).start(1);
    store.create({ title: 'b', hostName: 'h', scheduledStart: 0 });
    expect(store.list().map((s) => s.id)).toEqual(['s1', 's2']);
    expect(store.countByState()).toEqual({ scheduled: 1, live: 1, ended: 0 });
  });

  it('pages through the spaces in creation order, each once, whatever the page size', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 30 }), fc.integer({ min: 1, max: 12 }), (n, limit) => {
        let k = 0;
        const store = new SpaceStore(() => `s${k++}`);
        for (let i = 0; i < n; i++) store.create({ title: 't', hostName: 'h', scheduledStart: 0 });
        const seen: string[] = [];
        let after: string | undefined;
        for (let pages = 0; ; pages++) {
          expect(pages).toBeLessThanOrEqual(Math.ceil(n / limit));
          const p = store.page(limit, after)!;
          expect(p.spaces.length).toBeLessThanOrEqual(limit);
          seen.push(...p.spaces.map((s) => s.id));
          if (p.next === null) break;
          after = p.next;
        }
        expect(seen).toEqual(Array.from({ length: n }, (_, i) => `s${i}`));
      }),
    );
  });
});
