import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { FromChild } from '../servers/child.js';

export interface ServerChild {
  port: number;
  spaceId?: string;
  url: string;
  /** The child's own CPU time so far, in µs. */
  cpu(): Promise<number>;
  stop(): Promise<void>;
}

/** Starts bench/servers/<name>.js in its own process and waits until it listens. */
export async function startServer(name: string): Promise<ServerChild> {
  const file = fileURLToPath(new URL(`../servers/${name}.js`, import.meta.url));
  const child: ChildProcess = fork(file, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const ready = await new Promise<Extract<FromChild, { type: 'ready' }>>((resolve, reject) => {
    child.once('message', (m: FromChild) => (m.type === 'ready' ? resolve(m) : reject(new Error('unexpected message'))));
    child.once('exit', (code) => reject(new Error(`${name} exited with ${code}`)));
  });
  return {
    port: ready.port,
    ...(ready.spaceId ? { spaceId: ready.spaceId } : {}),
    url: `http://127.0.0.1:${ready.port}`,
    cpu: () =>
      new Promise((resolve) => {
        child.once('message', (m: FromChild) => m.type === 'cpu' && resolve(m.micros));
        child.send({ type: 'cpu' });
      }),
    stop: () =>
      new Promise((resolve) => {
        const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
        child.once('exit', () => {
          clearTimeout(timer);
          resolve();
        });
        child.send({ type: 'stop' });
      }),
  };
}
