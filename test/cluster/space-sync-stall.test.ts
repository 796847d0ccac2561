import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { manualClock, systemClock } from '../../src/clock.js';
import { startRedisServer } from '../../src/cluster/index.js';
import { useApps } from '../helpers/app.js';
import { useTempDir } from '../helpers/tmp.js';
import { useCleanup } from '../helpers/cleanup.js';

describe('an instance on a shared bus after a stall', () => {
  const startApp = useApps();
  const dir = useTempDir('stampede-stall-');
  const cleanup = useCleanup();

  it('sends its counts once for the intervals it missed, not once each back to back, and goes on on its schedule', async () => {
    const redis = await startRedisServer({ dir: dir(), clock: systemClock() });
    cleanup.push(() => redis.process.stop());
    const clock = manualClock(Date.now());
    const s = await startApp({ redisUrl: redis.url, instanceId: 'i1', peerIntervalMs: 1_000 }, { clock });
    const reader = new Redis(redis.url, { lazyConnect: true });
    cleanup.push(() => reader.quit());
    await reader.connect();
    // what Redis has been sent: the instance's counts go out as one PUBLISH per interval. Its GET /api/v1/cluster
    // reads Redis on the same connection, so once it answers, Redis has every command the instance sent before
    const published = async (): Promise<number> => {
      expect((await fetch(`${s.url}/api/v1/cluster`)).status).toBe(200);
      return Number(/cmdstat_publish:calls=(\d+)/.exec(await reader.info('commandstats'))?.[1] ?? 0);
    };
    const before = await published();
    // five intervals pass at once, as for a process that got no CPU for them
    await clock.advance(5_000);
    expect((await published()) - before).toBe(1);
    // and the next interval is on the grid it started on
    await clock.advance(999);
    expect((await published()) - before).toBe(1);
    await clock.advance(1);
    expect((await published()) - before).toBe(2);
  });
});
