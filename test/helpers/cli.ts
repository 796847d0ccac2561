import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const BIN = fileURLToPath(new URL('../../bin/stampede.js', import.meta.url));

export interface Running {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  /** Resolves when stdout matches; rejects if the process exits first. */
  waitFor(re: RegExp): Promise<RegExpMatchArray>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Runs the built CLI (npm test builds first) as a user would. */
export function runCli(args: string[], env: NodeJS.ProcessEnv = {}, cwd?: string): Running {
  const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'], ...(cwd ? { cwd } : {}) });
  let out = '';
  let err = '';
  const waiters = new Set<() => void>();
  child.stdout!.on('data', (d: Buffer) => {
    out += d.toString();
    for (const w of [...waiters]) w();
  });
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    exited,
    waitFor(re) {
      return new Promise((resolve, reject) => {
        const check = (): void => {
          const m = out.match(re);
          if (m) {
            waiters.delete(check);
            resolve(m);
          }
        };
        waiters.add(check);
        check();
        void exited.then(({ code }) => {
          if (waiters.has(check)) reject(new Error(`exited with ${code} before ${re}; stdout: ${out.slice(-500)} stderr: ${err.slice(-1500)}`));
        });
      });
    },
  };
}

export async function runToEnd(args: string[], env: NodeJS.ProcessEnv = {}, cwd?: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const r = runCli(args, env, cwd);
  const { code } = await r.exited;
  return { code, stdout: r.stdout(), stderr: r.stderr() };
}

/** POST …/join until it answers a ticket, waiting what Retry-After says after a 429/503; any other answer fails with its body. */
export async function joinLikeAClient(joinUrl: string): Promise<{ wsUrl: string }> {
  for (let attempt = 1; ; attempt++) {
    const res = await fetch(joinUrl, { method: 'POST' });
    const body = (await res.json()) as { wsUrl?: string; error?: { code: string } };
    if (res.ok && body.wsUrl) return { wsUrl: body.wsUrl };
    if (![429, 503].includes(res.status) || attempt === 20) throw new Error(`join answered ${res.status} ${JSON.stringify(body)} on attempt ${attempt}`);
    await new Promise((r) => setTimeout(r, Math.min(1000, Number(res.headers.get('retry-after') ?? 1) * 1000)));
  }
}
