import { killMarked, RUN_ENV, runAlive, runId } from './leftovers.js';
import { aptInstall, haveCommand } from './prometheus.js';

const list = (ms: { pid: number; cmdline: string }[]): string => ms.map((m) => `${m.pid} ${m.cmdline.slice(0, 80)}`).join('; ');

/**
 * Vitest global setup: ends what an earlier, killed test run left running (its `stampede serve`,
 * cluster instances, redis-server, haproxy, Prometheus, Chromium: every process carrying the marker of a
 * vitest process that is gone), marks this run's processes, and installs the Debian packages the
 * integration tests drive (a real Prometheus, a headless Chromium, and Redis and haproxy for the
 * cluster) when they are missing; when all are present it only runs `command -v`. The teardown ends
 * whatever of this run is still running when the tests are over (a test killed at its timeout never
 * ran its own cleanup).
 */
export default async function setup(): Promise<() => void> {
  const stale = killMarked((m) => !runAlive(m.run));
  if (stale.length) console.warn(`ended ${stale.length} processes left by an earlier, killed test run: ${list(stale)}`);
  const run = runId();
  if (run) process.env[RUN_ENV] = run;
  const missing: string[] = [];
  if (!(await haveCommand('prometheus')) || !(await haveCommand('promtool'))) missing.push('prometheus');
  if (!(await haveCommand('chromium'))) missing.push('chromium');
  if (!(await haveCommand('redis-server'))) missing.push('redis-server');
  if (!(await haveCommand('haproxy'))) missing.push('haproxy');
  if (missing.length) await aptInstall(missing);
  return () => {
    if (!run) return;
    // vitest's own workers carry the marker too; they end by themselves
    const strays = killMarked((m) => m.run === run && !m.cmdline.includes('vitest'));
    if (strays.length) console.warn(`ended ${strays.length} processes this test run left running: ${list(strays)}`);
  };
}
