import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { setArgs } from '../config.js';
import { newToken } from '../guard/index.js';
import { OPERATOR_TOKEN_ENV } from './serve.js';

/** The CLI's own entry point (this file runs as dist/src/cli/child.js). */
export const BIN = fileURLToPath(new URL('../../../bin/stampede.js', import.meta.url));

/** A `stampede serve` child on a free loopback port: the server under probe never shares our event loop. */
export async function serveChild(bin: string, sets: string[]): Promise<{ url: string; token: string; child: ChildProcess; stop: () => Promise<void> }> {
  // the child's operator token is ours to choose, handed over in its environment (never in argv)
  const token = newToken();
  const child = spawn(process.execPath, [bin, 'serve', '--port', '0', '--no-demo', '--json-logs', '--log-level', 'warn', ...setArgs(sets)], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, [OPERATOR_TOKEN_ENV]: token },
  });
  let out = '';
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const url = await new Promise<string>((resolvePromise, reject) => {
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const url = /listening on (http:\/\/\S+)/.exec(out)?.[1];
      if (url && /Ctrl-C to stop/.test(out)) resolvePromise(url);
    });
    void exited.then(() => reject(new Error(`the server exited before it listened: ${out.slice(-500)}`)));
  });
  return {
    url,
    token,
    child,
    stop: async () => {
      child.kill('SIGTERM');
      await exited;
    },
  };
}

