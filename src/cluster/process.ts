import { spawn, type ChildProcess } from 'node:child_process';
import { open, readFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import type { Clock } from '../clock.js';

export interface ProcessSpec {
  /** A short name for messages: `redis`, `haproxy`, `i2`. */
  name: string;
  command: string;
  args: string[];
  /** stdout and stderr are appended here (the child writes the file itself, no pipe through us). */
  logFile: string;
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Resolves true once the process serves; polled until it does or `readyTimeoutMs` passes. */
  ready: () => Promise<boolean>;
  readyTimeoutMs?: number;
  /** Signal for a clean stop (default SIGTERM); SIGKILL follows after `stopTimeoutMs`. */
  stopSignal?: NodeJS.Signals;
  stopTimeoutMs?: number;
}

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export class ProcessError extends Error {
  constructor(
    readonly code: 'PROCESS_EXITED' | 'PROCESS_NOT_READY' | 'PROCESS_NOT_FOUND',
    message: string,
  ) {
    super(`${code}: ${message}`);
    this.name = 'ProcessError';
  }
}

/** How often readiness is polled: a cadence, not a wait for an outcome. */
const POLL_MS = 100;

/**
 * One supervised child process: started, polled until ready, stopped with a signal and then SIGKILL at
 * a deadline. It runs in its own process group, so a Ctrl-C at the terminal reaches only the CLI, which
 * stops the children in order. One-shot: a restart is a new SupervisedProcess with the same spec.
 */
export class SupervisedProcess {
  private child: ChildProcess | null = null;
  private exit: Promise<Exit> | null = null;
  private stopping: Promise<Exit> | null = null;
  private gone = false;

  constructor(
    readonly spec: ProcessSpec,
    private readonly clock: Clock,
  ) {}

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** True from start() until the process exits. */
  get running(): boolean {
    return this.child !== null && !this.gone && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Resolves when the process exits, whoever ended it. */
  get exited(): Promise<Exit> {
    if (!this.exit) throw new Error(`${this.spec.name} was never started`);
    return this.exit;
  }

  /** Spawns and waits until ready; on failure the process is stopped and the error carries the log's tail. */
  async start(): Promise<void> {
    if (this.child) throw new Error(`${this.spec.name} was already started`);
    const s = this.spec;
    const log = await open(s.logFile, 'a');
    let spawnError: NodeJS.ErrnoException | null = null;
    let child: ChildProcess;
    try {
      child = spawn(s.command, s.args, { cwd: s.cwd, env: s.env, stdio: ['ignore', log.fd, log.fd], detached: true });
      this.child = child;
      this.exit = new Promise<Exit>((resolve) => {
        child.once('exit', (code, signal) => resolve({ code, signal }));
        child.on('error', (err) => {
          spawnError = err;
          resolve({ code: null, signal: null });
        });
      });
      void this.exit.then(() => {
        this.gone = true;
      });
    } finally {
      // the child holds its own copy of the descriptor from here on
      await log.close();
    }
    const timeoutMs = s.readyTimeoutMs ?? 20_000;
    const deadline = this.clock.now() + timeoutMs;
    for (;;) {
      const ready = await s.ready().catch(() => false);
      const err = spawnError as NodeJS.ErrnoException | null;
      if (err) throw new ProcessError('PROCESS_NOT_FOUND', `${s.name}: cannot run ${s.command} (${err.code ?? err.message})`);
      if (!this.running) {
        const e = await this.exit;
        throw new ProcessError('PROCESS_EXITED', `${s.name} exited (code ${e.code}, signal ${e.signal}) before it was ready:\n${await this.tail()}`);
      }
      if (ready) return;
      if (this.clock.now() > deadline) {
        await this.stop();
        throw new ProcessError('PROCESS_NOT_READY', `${s.name} was not ready within ${timeoutMs} ms:\n${await this.tail()}`);
      }
      await this.clock.sleep(POLL_MS);
    }
  }

  /** The last lines of the process's log, for error messages. */
  async tail(lines = 20): Promise<string> {
    const text = await readFile(this.spec.logFile, 'utf8').catch(() => '');
    return text.split('\n').slice(-lines - 1).join('\n');
  }

  /** Sends `signal` and waits for the exit, escalating to SIGKILL at the deadline. Same promise on every call. */
  stop(): Promise<Exit> {
    this.stopping ??= (async () => {
      if (!this.child || !this.exit) return { code: null, signal: null };
      if (!this.running) return this.exit;
      this.signal(this.spec.stopSignal ?? 'SIGTERM');
      const ctl = new AbortController();
      const killed = this.clock.sleep(this.spec.stopTimeoutMs ?? 15_000, ctl.signal).then(() => {
        if (!ctl.signal.aborted && this.running) this.signal('SIGKILL');
      });
      const e = await this.exit;
      ctl.abort();
      await killed;
      return e;
    })();
    return this.stopping;
  }

  /** Fault injection: SIGKILL now, no drain; resolves on exit. */
  kill(): Promise<Exit> {
    this.stopping ??= (async () => {
      if (!this.exit) return { code: null, signal: null };
      if (this.running) this.signal('SIGKILL');
      return this.exit;
    })();
    return this.stopping;
  }

  /** SIGKILL without waiting (for a process that is about to exit itself). */
  killNow(): void {
    if (this.running) this.signal('SIGKILL');
  }

  private signal(sig: NodeJS.Signals): void {
    try {
      this.child?.kill(sig);
    } catch {
      // already gone: the exit promise settles on its own
    }
  }
}

/** A TCP port on 127.0.0.1 that was free a moment ago (for programs that cannot bind port 0 and report it). */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, host, () => {
      const addr = s.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      s.close(() => resolve(port));
    });
  });
}

/** True when an HTTP GET of `url` answers `status` (default: any 2xx) within `timeoutMs`. */
export async function httpAnswers(url: string, timeoutMs = 1_000, status?: number): Promise<boolean> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    await res.arrayBuffer();
    return status === undefined ? res.ok : res.status === status;
  } catch {
    return false;
  }
}
