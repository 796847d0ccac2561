import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { runCli, runToEnd, type Running } from '../helpers/cli.js';
import { useTempDir } from '../helpers/tmp.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** Splits a shell command line into words (double and single quotes; no expansions). */
function words(line: string): string[] {
  const out: string[] = [];
  for (const m of line.matchAll(/"([^"]*)"|'([^']*)'|(\S+)/g)) out.push(m[1] ?? m[2] ?? m[3]!);
  return out;
}

/** The stampede invocations in a README's sh blocks: `npx stampede …` / `node bin/stampede.js …`, without comments, `&` or the `&&` before them. */
export function readmeExamples(md: string): string[][] {
  const out: string[][] = [];
  for (const block of md.matchAll(/```sh\n([\s\S]*?)```/g))
    for (const raw of block[1]!.split('\n')) {
      const line = raw.replace(/\s+#.*$/, '').replace(/\s*&\s*$/, '');
      const m = /(?:^|&&\s*)(?:npx stampede|node bin\/stampede\.js)\s+(.*)$/.exec(line);
      if (m) out.push(words(m[1]!));
    }
  return out;
}

/** `$ stampede …` lines of a command's help ("Examples:"), and `e.g. --flag value` in option descriptions. */
export function helpExamples(command: string, help: string): string[][] {
  const out = [...help.matchAll(/^\s*\$ stampede (.+)$/gm)].map((m) => words(m[1]!));
  // option descriptions wrap at the terminal's width: read them as one line
  for (const m of help.replace(/\s+/g, ' ').matchAll(/e\.g\. (--[a-z-]+ \S+)/g)) out.push([command, ...words(m[1]!.replace(/[),;]+$/, ''))]);
  return out;
}

type Kind = 'to-end' | 'server' | 'live-replay' | 'cluster';

/**
 * How the test runs an example as written, bounded for a 2-core test machine: ports become 0 (any free
 * port), outputs go to a temporary directory, servers bind loopback, load runs are cut to 1 s, a live
 * replay (on a cluster too, its directory made temporary) runs until its server is up and is then interrupted (Ctrl-C), a server is stopped with SIGTERM,
 * a cluster is interrupted (Ctrl-C) once it is up.
 */
function plan(args: string[], tmp: string, target: string | null): { args: string[]; kind: Kind } {
  const a = args.map((w) => (w.startsWith('out/') ? join(tmp, w.slice(4)) : w));
  const set = (flag: string, value: string): void => {
    const i = a.indexOf(flag);
    if (i >= 0) a[i + 1] = value;
    else a.push(flag, value);
  };
  const cmd = a[0]!;
  if (a.includes('--port') || cmd === 'serve') set('--port', '0');
  if (a.includes('--host')) set('--host', '127.0.0.1');
  if (a.includes('--metrics-port')) set('--metrics-port', '0');
  if (cmd === 'load') {
    if (!a.includes('--duration')) a.push('--duration', '1');
    if (a.includes('--target') && target) set('--target', target);
  }
  if (cmd === 'replay' || cmd === 'compare') set('--out', tmp);
  if (cmd === 'replay' && a.includes('--instances')) set('--cluster-dir', join(tmp, 'cluster'));
  if (cmd === 'dashboards') set('--root', tmp);
  if (cmd === 'serve') return { args: a, kind: 'server' };
  if (cmd === 'cluster') {
    set('--port', '0');
    set('--dir', tmp);
    return { args: a, kind: 'cluster' };
  }
  if (cmd === 'replay' && !(a.includes('--speed') && a[a.indexOf('--speed') + 1] === 'max')) {
    if (!a.includes('--port')) a.push('--port', '0');
    return { args: a, kind: 'live-replay' };
  }
  return { args: a, kind: 'to-end' };
}

/** Sends `signal` and waits for the exit: its code, or the signal that ended it (never a bare null). */
async function stopWith(r: Running, signal: NodeJS.Signals): Promise<number | string | null> {
  r.child.kill(signal);
  const { code, signal: endedBy } = await r.exited;
  return code ?? endedBy;
}

describe('every example in the README and in each --help runs', async () => {
  const tmp = useTempDir('stampede-examples-');
  const readme = readmeExamples(await readFile(join(ROOT, 'README.md'), 'utf8'));
  const top = await runToEnd(['--help']);
  const commands = [...top.stdout.matchAll(/^ {2}([a-z]+) /gm)].map((m) => m[1]!).filter((c) => c !== 'help');
  const fromHelp: { command: string; args: string[] }[] = [];
  for (const c of commands) for (const args of helpExamples(c, (await runToEnd([c, '--help'])).stdout)) fromHelp.push({ command: c, args });

  it('finds the examples', () => {
    expect(readme.length).toBeGreaterThanOrEqual(10);
    expect(fromHelp.map((e) => e.command)).toEqual(expect.arrayContaining(['load', 'replay', 'dashboards']));
  });

  // an example shown in both places runs once
  const seen = new Set<string>();
  const all = [...readme.map((args) => ({ where: 'README.md', args })), ...fromHelp.map((e) => ({ where: `stampede ${e.command} --help`, args: e.args }))].filter((e) => {
    const key = e.args.join('\0');
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
  for (const e of all) {
    it(`${e.where}: stampede ${e.args.join(' ')}`, async () => {
      const dir = tmp();
      // an example aimed at a running server gets one
      const server = e.args.includes('--target') ? runCli(['serve', '--port', '0', '--log-level', 'warn']) : null;
      try {
        const target = server ? (await server.waitFor(/listening on (http:\/\/127\.0\.0\.1:\d+)/))[1]! : null;
        const p = plan(e.args, dir, target);
        if (p.kind === 'server') {
          const r = runCli(p.args);
          await r.waitFor(/listening on http:\/\/127\.0\.0\.1:\d+/);
          expect(await stopWith(r, 'SIGTERM'), r.stderr()).toBe(0);
        } else if (p.kind === 'cluster') {
          const r = runCli(p.args);
          await r.waitFor(/Ctrl-C to stop everything/);
          expect(await stopWith(r, 'SIGINT'), r.stderr()).toBe(0);
          expect(r.stdout()).toContain('stopped cleanly');
        } else if (p.kind === 'live-replay') {
          const r = runCli(p.args);
          await r.waitFor(/server live on http:\/\/127\.0\.0\.1:\d+/);
          expect(await stopWith(r, 'SIGINT'), r.stderr()).toBe(130);
          expect(r.stdout()).toContain('interrupted');
        } else {
          const r = await runToEnd(p.args);
          // a load example is judged by its thresholds (0 or 99, depending on this machine); never an error
          if (p.args[0] === 'load') expect([0, 99], `${r.stderr}\n${r.stdout.slice(-800)}`).toContain(r.code);
          else expect(r.code, r.stderr).toBe(0);
          expect(r.stderr).not.toMatch(/^stampede: /m);
        }
      } finally {
        if (server) await stopWith(server, 'SIGTERM');
      }
    }, 60_000);
  }
});
