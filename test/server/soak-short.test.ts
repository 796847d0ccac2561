import { afterEach, describe, expect, it } from 'vitest';
import { serveChild } from '../../src/cli/child.js';
import { ONE_ADDRESS_CROWD_SETS } from '../../src/config.js';
import { systemClock } from '../../src/clock.js';
import { runSoak, SOAK_DEFAULTS } from '../../src/load/soak.js';
import { createRng } from '../../src/sim/index.js';
import { BIN } from '../helpers/cli.js';

/**
 * The short version of `npm run soak` (docs/reliability.md #15): the same crowd — steady listeners,
 * churn, one reconnect storm — against a `stampede serve` child for 15 s. Fifteen seconds cannot tell
 * a slow leak from the heap's sawtooth, so here the soak must bring the server's open files and
 * connections back to baseline and keep every listener hearing audio; the memory slopes and the loop
 * lag are the long soak's to judge (and are printed here for the record).
 */
describe('the short soak', () => {
  let stop: (() => Promise<void>) | null = null;
  afterEach(async () => {
    await stop?.();
    stop = null;
  });

  it('steady listeners, churn and a reconnect storm leave the server with the files and connections it started with', async () => {
    const server = await serveChild(BIN, ONE_ADDRESS_CROWD_SETS);
    stop = server.stop;
    const r = await runSoak({
      ...SOAK_DEFAULTS,
      base: new URL(server.url),
      ...(server.token ? { token: server.token } : {}),
      seconds: 15,
      steady: 60,
      churnPerSecond: 8,
      churnHoldS: 3,
      storm: 60,
      stormAtS: 7,
      clock: systemClock(),
      random: createRng(7).next,
    });
    console.log(`short soak: heap slope ${r.heapSlopeMiBPerMin} MiB/min, RSS slope ${r.rssSlopeMiBPerMin} MiB/min, worst loop p99 ${r.loopLagP99MaxMs} ms, open files ${r.fdBaseline} → ${r.fdPeak} → ${r.fdAfter}`);
    expect(r.peakConnections).toBeGreaterThanOrEqual(100);
    expect(r.joins.admitted).toBeGreaterThanOrEqual(60 + 60);
    expect(r.audioChunks).toBeGreaterThan(1_000);
    expect(r.checks.find((c) => c.check.startsWith('open files'))?.pass).toBe(true);
    expect(r.checks.find((c) => c.check.startsWith('connections after'))?.pass).toBe(true);
    expect(r.fdPeak).toBeGreaterThan(r.fdBaseline + 100);
  }, 60_000);
});
