import { join } from 'node:path';
import type { Dashboard } from './builder.js';
import { outageDashboard } from './outage.js';
import { renderRules } from './rules.js';
import { serverDashboard } from './server.js';
import { writeAtomic } from '../write-atomic.js';

/** Replay speeds that get a ready-made rule variant next to the real-time rules. */
export const RULE_VARIANT_SPEEDS = [60] as const;

export function generateDashboards(): { outage: Dashboard; server: Dashboard } {
  return { outage: outageDashboard(), server: serverDashboard() };
}

/**
 * Every generated file, keyed by its path relative to the repository root; `extraSpeeds` adds rule
 * variants for other replay speeds (`rules-speed<N>/`).
 */
export function generatedFiles(extraSpeeds: readonly number[] = []): Map<string, string> {
  const d = generateDashboards();
  const files = new Map<string, string>([
    ['dashboards/stampede-outage.json', JSON.stringify(d.outage, null, 2) + '\n'],
    ['dashboards/stampede-server.json', JSON.stringify(d.server, null, 2) + '\n'],
    ['dashboards/prometheus/rules/stampede-slo.yml', renderRules(1)],
  ]);
  for (const speed of new Set([...RULE_VARIANT_SPEEDS, ...extraSpeeds])) files.set(`dashboards/prometheus/rules-speed${speed}/stampede-slo.yml`, renderRules(speed));
  return files;
}

/** Writes every generated file under `root`, each whole (`writeAtomic`). */
export async function writeGenerated(root: string, extraSpeeds: readonly number[] = []): Promise<string[]> {
  const written: string[] = [];
  for (const [rel, text] of generatedFiles(extraSpeeds)) {
    const path = join(root, rel);
    await writeAtomic(path, text);
    written.push(rel);
  }
  return written;
}
