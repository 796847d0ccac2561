import { readdirSync, readFileSync } from 'node:fs';

/**
 * Processes a test run leaves behind. Every process a run starts (`stampede serve` and `cluster` through
 * the CLI, the cluster's redis-server, haproxy and instances, Prometheus, Chromium) inherits the run's
 * environment, so each carries `STAMPEDE_TEST_RUN=<pid>:<start time>` of the vitest process that set it
 * — also the cluster's children, which run in process groups of their own and so outlive a killed run.
 * Linux only (/proc); elsewhere nothing is found.
 */
export const RUN_ENV = 'STAMPEDE_TEST_RUN';

/** This process's identity as a run: its pid and its start time (clock ticks since boot), unique while the machine runs. */
export function runId(pid = process.pid): string | null {
  try {
    // the fields after the command name, which is in parentheses and may hold spaces
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const start = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
    return start ? `${pid}:${start}` : null;
  } catch {
    return null;
  }
}

/** Whether the vitest process a run id names is still running. */
export function runAlive(id: string): boolean {
  return runId(Number(id.split(':')[0])) === id;
}

interface Marked {
  pid: number;
  run: string;
  cmdline: string;
}

/** Every process carrying a run marker (other than this one). */
export function markedProcesses(): Marked[] {
  let pids: string[];
  try {
    pids = readdirSync('/proc').filter((d) => /^\d+$/.test(d));
  } catch {
    return [];
  }
  const out: Marked[] = [];
  for (const p of pids) {
    const pid = Number(p);
    if (pid === process.pid) continue;
    try {
      const env = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
      const run = env.find((e) => e.startsWith(`${RUN_ENV}=`))?.slice(RUN_ENV.length + 1);
      if (run) out.push({ pid, run, cmdline: readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ').trim() });
    } catch {
      // gone meanwhile, or not ours to read
    }
  }
  return out;
}

/** SIGKILLs the processes picked; returns what was killed. */
export function killMarked(pick: (m: Marked) => boolean): Marked[] {
  const killed: Marked[] = [];
  for (const m of markedProcesses()) {
    if (!pick(m)) continue;
    try {
      process.kill(m.pid, 'SIGKILL');
      killed.push(m);
    } catch {
      // already gone
    }
  }
  return killed;
}
