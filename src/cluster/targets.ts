import { writeAtomic } from '../write-atomic.js';

/** One target group of Prometheus file-based service discovery (`file_sd_configs`). */
export interface TargetGroup {
  targets: string[];
  labels: Record<string, string>;
}

/**
 * One group per instance, so each carries its own `instance` label (the instance id, `i1`, rather than
 * `host:port`, which changes from run to run): dashboards sum across instances or break down by it.
 */
export function prometheusTargets(instances: { id: string; address: string }[], cluster: string): TargetGroup[] {
  return instances.map((i) => ({ targets: [i.address], labels: { instance: i.id, cluster, role: 'server' } }));
}

/** Writes the file whole (`writeAtomic`) so Prometheus, which watches it, never reads half of it. */
export async function writePrometheusTargets(file: string, groups: TargetGroup[]): Promise<void> {
  await writeAtomic(file, `${JSON.stringify(groups, null, 2)}\n`);
}
