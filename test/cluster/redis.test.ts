import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { systemClock } from '../../src/clock.js';
import { RedisLink, redisAnswers, redisRetryDelayMs, startRedisServer, type SupervisedProcess } from '../../src/cluster/index.js';
import { createLogger } from '../../src/logging.js';
import { useTempDir } from '../helpers/tmp.js';
import { useCleanup } from '../helpers/cleanup.js';

function capture(): { logger: ReturnType<typeof createLogger>; lines: () => { msg: string; level: number }[] } {
  let text = '';
  const destination = new Writable({
    write(chunk: Buffer, _enc, cb) {
      text += chunk.toString();
      cb();
    },
  });
  return { logger: createLogger({ level: 'info', destination }), lines: () => text.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as { msg: string; level: number }) };
}

describe('Redis for the cluster (real redis-server on loopback, ioredis)', () => {
  const dir = useTempDir('stampede-redis-');
  const clock = systemClock();
  const cleanup = useCleanup();

  async function redis(port?: number): Promise<{ process: SupervisedProcess; port: number; url: string }> {
    const r = await startRedisServer({ dir: dir(), clock, ...(port ? { port } : {}) });
    cleanup.push(() => r.process.stop());
    return r;
  }

  function link(url: string, name: string, events = {}): { link: RedisLink; lines: ReturnType<typeof capture>['lines'] } {
    const { logger, lines } = capture();
    const l = new RedisLink(url, name, logger, events);
    cleanup.push(() => l.stop());
    return { link: l, lines };
  }

  it('starts redis-server on a free port and stops it cleanly', async () => {
    const r = await redis();
    expect(await redisAnswers(r.port)).toBe(true);
    expect(await r.process.stop()).toEqual({ code: 0, signal: null });
    expect(await redisAnswers(r.port)).toBe(false);
  });

  it('delivers binary messages to every subscriber, in the order published', async () => {
    const r = await redis();
    const a = link(r.url, 'a').link;
    const b = link(r.url, 'b').link;
    const c = link(r.url, 'c').link;
    await Promise.all([a.start(clock), b.start(clock), c.start(clock)]);
    const got: Record<string, number[]> = { b: [], c: [] };
    const all = new Promise<void>((resolve) => {
      for (const [name, l] of [['b', b], ['c', c]] as const) {
        void l.subscribe('audio', (p) => {
          got[name]!.push(p.readUInt32BE(0));
          if (got.b!.length === 500 && got.c!.length === 500) resolve();
        });
      }
    });
    await expect.poll(() => a.subscribers('audio')).toBe(2);
    for (let seq = 0; seq < 500; seq++) {
      const buf = Buffer.alloc(64);
      buf.writeUInt32BE(seq, 0);
      expect(a.publish('audio', buf)).toBe(true);
    }
    await all;
    const inOrder = Array.from({ length: 500 }, (_, k) => k);
    expect(got.b).toEqual(inOrder);
    expect(got.c).toEqual(inOrder);
  });

  it('hands a key out once across connections (tickets), and it expires', async () => {
    const r = await redis();
    const a = link(r.url, 'a').link;
    const b = link(r.url, 'b').link;
    await Promise.all([a.start(clock), b.start(clock)]);
    expect(await a.putOnce('t:1', 'space-1', 10_000)).toBe(true);
    expect(await a.putOnce('t:1', 'other', 10_000)).toBe(false);
    const takes = await Promise.all([b.take('t:1'), a.take('t:1'), b.take('t:1')]);
    expect(takes.filter((v) => v !== null)).toEqual(['space-1']);
    await a.putOnce('t:2', 'x', 50);
    await expect.poll(() => b.get('t:2')).toBeNull();
    await a.put('inst:i1', 'one', 10_000);
    await a.put('inst:i2', 'two', 10_000);
    expect((await b.getAll('inst:')).sort()).toEqual(['one', 'two']);
  });

  it('fails clearly when nothing answers', async () => {
    const { link: l } = link('redis://127.0.0.1:1', 'x');
    await expect(l.start(clock, 500)).rejects.toThrow(/REDIS_UNREACHABLE: no answer from Redis within 500 ms/);
  });

  it('rides out a Redis restart: drops while away, resubscribes, says so in the log and through its events', async () => {
    const r = await redis();
    const events: string[] = [];
    const sub = link(r.url, 'sub', { onDown: () => events.push('down'), onUp: (again: boolean) => events.push(again ? 'resubscribed' : 'up') });
    const pub = link(r.url, 'pub').link;
    await Promise.all([sub.link.start(clock), pub.start(clock)]);
    const got: string[] = [];
    await sub.link.subscribe('ctl', (p) => got.push(p.toString()));
    await expect.poll(() => (pub.publish('ctl', 'before'), got.includes('before'))).toBe(true);
    await r.process.stop();
    await expect.poll(() => sub.link.up).toBe(false);
    expect(pub.publish('ctl', 'while away')).toBe(false);
    const again = await startRedisServer({ dir: dir(), clock, port: r.port });
    cleanup.push(() => again.process.stop());
    await expect.poll(() => sub.link.up && pub.up, { timeout: 10_000 }).toBe(true);
    await expect.poll(() => (pub.publish('ctl', 'after'), got.includes('after')), { timeout: 5_000 }).toBe(true);
    expect(got).not.toContain('while away');
    expect(events).toEqual(['up', 'down', 'resubscribed']);
    const msgs = sub.lines().map((l) => l.msg);
    expect(msgs.filter((m) => m.startsWith('lost Redis'))).toHaveLength(1);
    expect(msgs).toContain('Redis is back: resubscribed');
  });

  it('backs off from 50 ms, doubling, to at most 1 s', () => {
    expect([1, 2, 3, 4, 5, 6, 7, 50].map(redisRetryDelayMs)).toEqual([50, 100, 200, 400, 800, 1000, 1000, 1000]);
  });
});
