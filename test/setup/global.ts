import { aptInstall, haveCommand } from './prometheus.js';

/**
 * Vitest global setup: installs the Debian packages the integration tests drive (a real Prometheus and
 * a headless Chromium) when they are missing; when both are present it only runs `command -v`.
 */
export default async function setup(): Promise<void> {
  const missing: string[] = [];
  if (!(await haveCommand('prometheus')) || !(await haveCommand('promtool'))) missing.push('prometheus');
  if (!(await haveCommand('chromium'))) missing.push('chromium');
  if (missing.length) await aptInstall(missing);
}
