import { aptInstall, haveCommand } from './prometheus.js';

/**
 * Vitest global setup: installs the Debian packages the integration tests drive (a real Prometheus, a
 * headless Chromium, and Redis and haproxy for the cluster) when they are missing; when all are present
 * it only runs `command -v`.
 */
export default async function setup(): Promise<void> {
  const missing: string[] = [];
  if (!(await haveCommand('prometheus')) || !(await haveCommand('promtool'))) missing.push('prometheus');
  if (!(await haveCommand('chromium'))) missing.push('chromium');
  if (!(await haveCommand('redis-server'))) missing.push('redis-server');
  if (!(await haveCommand('haproxy'))) missing.push('haproxy');
  if (missing.length) await aptInstall(missing);
}
