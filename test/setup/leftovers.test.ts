import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import { killMarked, markedProcesses, RUN_ENV, runAlive, runId } from './leftovers.js';

describe('processes a killed test run leaves behind', () => {
  const started: ChildProcess[] = [];
  afterEach(() => {
    for (const c of started.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  });
  /** A process in a process group of its own (as the cluster's children are), marked as belonging to `run`. */
  const orphanOf = (run: string): ChildProcess => {
    const c = spawn('sleep', ['60'], { env: { ...process.env, [RUN_ENV]: run }, detached: true, stdio: 'ignore' });
    started.push(c);
    return c;
  };

  it('ends those of a run whose vitest process is gone, and leaves a running run alone', async () => {
    const gone = `${2 ** 22 + 1}:1`; // above Linux's largest pid: no such process
    const running = runId()!;
    expect(runAlive(running)).toBe(true);
    expect(runAlive(gone)).toBe(false);
    const stale = orphanOf(gone);
    const current = orphanOf(running);
    const mine = (pid: number | undefined): boolean => pid === stale.pid || pid === current.pid;
    // each shows with its own marker once it has exec'd
    await expect.poll(() => markedProcesses().filter((m) => mine(m.pid) && m.cmdline.startsWith('sleep')).map((m) => m.run).sort()).toEqual([gone, running].sort());

    const killed = killMarked((m) => mine(m.pid) && !runAlive(m.run));
    expect(killed.map((m) => m.pid)).toEqual([stale.pid]);
    const [, signal] = (await once(stale, 'exit')) as [number | null, NodeJS.Signals | null];
    expect(signal).toBe('SIGKILL');
    expect(current.exitCode === null && current.signalCode === null).toBe(true);
  });
});
