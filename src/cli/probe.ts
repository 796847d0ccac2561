import { InvalidArgumentError, type Command } from 'commander';
import { PROBES, runProbe, type ProbeName } from '../load/probe.js';
import { BIN, serveChild } from './child.js';
import { collect, parsePositiveInt, writeJsonFile } from './common.js';

/** What the server started here is told for a probe, so the probe takes seconds rather than minutes. */
const SETTINGS: Partial<Record<ProbeName, string[]>> = {
  'unrequested-pong': ['heartbeatMs=1000'],
  'host-gone': ['hostGoneGraceMs=2000'],
};

function parseProbe(v: string, prev: ProbeName[]): ProbeName[] {
  if (!(PROBES as readonly string[]).includes(v)) throw new InvalidArgumentError(`expected one of ${PROBES.join(', ')}`);
  return [...prev, v as ProbeName];
}

export function registerProbe(program: Command): void {
  program
    .command('probe')
    .description('probe a server the way one anonymous client could hurt it (docs/reliability.md #19–#26); loopback only, every probe bounded')
    .option('--only <probe>', `one probe (repeatable): ${PROBES.join(', ')}`, parseProbe, [])
    .option('--target <url>', 'server to probe (loopback only); default: start one here, in a child process')
    .option('--token <token>', "the target's operator token")
    .option('--set <key=value>', 'a setting for the server started here (repeatable), e.g. heartbeatMs=1000', collect, [])
    .option('--flood-seconds <s>', 'how long each flood lasts', parsePositiveInt, 10)
    .option('--json <file>', 'write the figures as JSON')
    .action(async (o: { only: ProbeName[]; target?: string; token?: string; set: string[]; floodSeconds: number; json?: string }) => {
      const names = o.only.length ? o.only : [...PROBES];
      const out = process.stdout;
      const results: Record<string, unknown> = {};
      for (const name of names) {
        // a fresh server per probe, so one probe's damage is not the next one's starting point
        const server = o.target ? null : await serveChild(BIN, [...(SETTINGS[name] ?? []), ...o.set]);
        const base = new URL(o.target ?? server!.url);
        const token = o.token ?? server?.token;
        try {
          const r = await runProbe(name, { base, ...(token ? { token } : {}) }, { floodMs: o.floodSeconds * 1000, heartbeatWaitMs: o.target ? 35_000 : 5_000, hostGoneWaitMs: o.target ? 150_000 : 6_000 });
          results[name] = r;
          out.write(`${name.padEnd(16)} ${Object.entries(r).map(([k, v]) => `${k}=${v}`).join('  ')}\n`);
        } catch (err) {
          results[name] = { error: (err as Error).message };
          out.write(`${name.padEnd(16)} error: ${(err as Error).message}\n`);
        } finally {
          await server?.stop();
        }
      }
      if (o.json) out.write(`results: ${await writeJsonFile(o.json, results)}\n`);
    });
}
