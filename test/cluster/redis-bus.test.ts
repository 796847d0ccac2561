import { describe, expect, it } from 'vitest';
import { systemClock } from '../../src/clock.js';
import { RedisBus, startRedisServer } from '../../src/cluster/index.js';
import { createLogger } from '../../src/logging.js';
import type { InstanceCounts, ReactionCounts, SpaceAnnouncement } from '../../src/protocol/index.js';
import type { BusHandlers } from '../../src/server/bus.js';
import { useTempDir } from '../helpers/tmp.js';
import { useCleanup } from '../helpers/cleanup.js';

interface Heard {
  audio: [string, number][];
  spaces: SpaceAnnouncement[];
  counts: [string, InstanceCounts][];
  reactions: [string, ReactionCounts][];
}

function recorder(): { heard: Heard; handlers: BusHandlers } {
  const heard: Heard = { audio: [], spaces: [], counts: [], reactions: [] };
  return {
    heard,
    handlers: {
      audio: (s, c) => heard.audio.push([s, c.readUInt32BE(0)]),
      space: (a) => heard.spaces.push(a),
      counts: (from, c) => heard.counts.push([from, c]),
      reactions: (s, c) => heard.reactions.push([s, c]),
    },
  };
}

describe('RedisBus (real Redis)', () => {
  const dir = useTempDir('stampede-bus-');
  const clock = systemClock();
  const cleanup = useCleanup();

  async function buses(n: number): Promise<{ bus: RedisBus; heard: Heard }[]> {
    const r = await startRedisServer({ dir: dir(), clock });
    cleanup.push(() => r.process.stop());
    const out = [];
    for (let k = 1; k <= n; k++) {
      const bus = new RedisBus({ url: r.url, instanceId: `i${k}`, logger: createLogger({ level: 'silent' }), clock });
      const { heard, handlers } = recorder();
      await bus.start(handlers);
      cleanup.push(() => bus.stop());
      out.push({ bus, heard });
    }
    return out;
  }

  const chunk = (seq: number): Buffer => {
    const b = Buffer.alloc(32);
    b.writeUInt32BE(seq, 0);
    return b;
  };

  it('an instance hears its own audio at once and every other instance hears it once, in order', async () => {
    const [a, b, c] = await buses(3);
    for (let seq = 0; seq < 200; seq++) {
      a!.bus.publishAudio('s1', chunk(seq));
      // the publisher's own listeners get the chunk in the same call, as with the embedded bus
      expect(a!.heard.audio.length).toBe(seq + 1);
    }
    const all = Array.from({ length: 200 }, (_, seq) => ['s1', seq]);
    await expect.poll(() => b!.heard.audio.length + c!.heard.audio.length).toBe(400);
    expect(b!.heard.audio).toEqual(all);
    expect(c!.heard.audio).toEqual(all);
    // Redis echoes to the publisher too; that copy is skipped
    await expect.poll(() => a!.bus.up).toBe(true);
    expect(a!.heard.audio).toEqual(all);
  });

  it('passes space announcements, counts and reactions to the other instances only', async () => {
    const [a, b] = await buses(2);
    const space: SpaceAnnouncement = { id: 's1', title: 'T', hostName: 'h', scheduledStart: 0, state: 'live', startedAt: 5, endedAt: null, hostTokenHash: 'f'.repeat(64), owner: 'i1', synthetic: true, chunks: 0 };
    a!.bus.announce(space);
    a!.bus.publishCounts({ real: { s1: 4 }, virtual: { s1: 1000 }, simTime: '2024-08-13T00:42:00.000Z' });
    a!.bus.publishReactions('s1', { '🔥': 3 });
    await expect.poll(() => b!.heard.reactions.length).toBe(1);
    expect(b!.heard.spaces).toEqual([space]);
    expect(b!.heard.counts).toEqual([['i1', { real: { s1: 4 }, virtual: { s1: 1000 }, simTime: '2024-08-13T00:42:00.000Z' }]]);
    expect(b!.heard.reactions).toEqual([['s1', { '🔥': 3 }]]);
    expect(a!.heard.spaces.length + a!.heard.counts.length + a!.heard.reactions.length).toBe(0);
  });

  it('one instance holds a space lease; the others take it only once it lapses, and the old holder learns it lost it', async () => {
    const [a, b, c] = await buses(3);
    expect(await a!.bus.claim('s1', 300)).toBe(true);
    expect([await b!.bus.claim('s1', 300), await c!.bus.claim('s1', 300)]).toEqual([false, false]);
    expect(await a!.bus.hold('s1', 300)).toBe(true);
    // the holder stops renewing: after the lease runs out exactly one of the racers gets it
    await expect.poll(async () => (await Promise.all([b!.bus.claim('s1', 60_000), c!.bus.claim('s1', 60_000)])).filter(Boolean).length, { interval: 50 }).toBe(1);
    expect(await a!.bus.hold('s1', 300)).toBe(false);
    // a lease that vanished (a Redis restart keeps nothing) is taken again by the one who renews it
    expect(await a!.bus.hold('s2', 300)).toBe(true);
    expect(await b!.bus.claim('s2', 300)).toBe(false);
  });

  it('a ticket put by one instance is taken once, by any instance; statuses expire', async () => {
    const [a, b, c] = await buses(3);
    await a!.bus.putTicket('T1', { spaceId: 's1', name: 'ann' }, 10_000);
    const takes = await Promise.all([b!.bus.takeTicket('T1'), c!.bus.takeTicket('T1'), a!.bus.takeTicket('T1')]);
    expect(takes.filter(Boolean)).toEqual([{ spaceId: 's1', name: 'ann' }]);
    expect(await b!.bus.takeTicket('never-issued')).toBeNull();
    const status = (id: string, at: number) => ({ id, url: `http://127.0.0.1:1/${id}`, state: 'ready' as const, listeners: 1, connections: 1, startedAt: 0, at });
    a!.bus.putStatus(status('i1', 1), 10_000);
    b!.bus.putStatus(status('i2', 1), 100);
    await expect.poll(async () => (await c!.bus.statuses()).map((s) => s.id)).toEqual(['i1', 'i2']);
    await expect.poll(async () => (await c!.bus.statuses()).map((s) => s.id)).toEqual(['i1']);
  });
});
