import { mkdir, rename, writeFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { InvalidArgumentError } from 'commander';

export function parsePort(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError('expected a port number from 0 to 65535');
  return n;
}

/** A count or a seed: a whole number, 0 included. */
export function parseWholeNumber(v: string): number {
  const n = Number(v);
  if (v.trim() === '' || !Number.isInteger(n) || n < 0) throw new InvalidArgumentError('expected a whole number ≥ 0');
  return n;
}

/** A size or a duration: a whole number of at least 1. */
export function parsePositiveInt(v: string): number {
  const n = Number(v);
  if (v.trim() === '' || !Number.isInteger(n) || n < 1) throw new InvalidArgumentError('expected a whole number ≥ 1');
  return n;
}

/** Load workers (`load --workers`, `replay --workers`): at least 1 (this process alone), at most 64 (threads, each its own event loop). */
export function parseWorkers(v: string): number {
  const n = parsePositiveInt(v);
  if (n > 64) throw new InvalidArgumentError('at most 64 workers');
  return n;
}

export function collect(v: string, prev: string[]): string[] {
  return [...prev, v];
}

/**
 * Runs `work` until it finishes or the process gets SIGINT/SIGTERM, then calls `stop` once.
 * A second signal exits at once. The only place that listens to signals.
 */
export async function untilSignal(stop: () => Promise<void>, work?: Promise<unknown>): Promise<'signal' | 'done'> {
  let onSignal: (() => void) | null = null;
  const signalled = new Promise<'signal'>((resolve) => {
    let count = 0;
    onSignal = () => {
      count++;
      if (count > 1) process.exit(130);
      resolve('signal');
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
  const why = await Promise.race([signalled, work ? work.then(() => 'done' as const) : new Promise<never>(() => {})]);
  await stop();
  if (onSignal) {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  return why;
}

/** Writes `value` as JSON to `file` whole (a temporary file renamed into place); returns the absolute path. */
export async function writeJsonFile(file: string, value: unknown): Promise<string> {
  const path = resolve(file);
  await mkdir(dirname(path), { recursive: true });
  await writeFile(`${path}.tmp`, `${JSON.stringify(value, null, 2)}\n`);
  await rename(`${path}.tmp`, path);
  return path;
}
