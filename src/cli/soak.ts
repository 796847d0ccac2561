import type { Command } from 'commander';
import { systemClock } from '../clock.js';
import { ONE_ADDRESS_CROWD_SETS } from '../config.js';
import { formatSoak, runSoak, SOAK_DEFAULTS } from '../load/soak.js';
import { createRng } from '../sim/index.js';
import { BIN, serveChild } from './child.js';
import { collect, parsePositiveInt, writeJsonFile } from './common.js';

export function registerSoak(program: Command): void {
  program
    .command('soak')
    .description('a bounded soak: steady listeners, churn and one reconnect storm; passes when memory is flat, open files come back and the event loop keeps up')
    .option('--target <url>', 'server to soak (loopback only); default: start one here, in a child process')
    .option('--token <token>', "the target's operator token")
    .option('--seconds <s>', 'how long the crowd is on', parsePositiveInt, SOAK_DEFAULTS.seconds)
    .option('--steady <n>', 'listeners that stay the whole time', parsePositiveInt, SOAK_DEFAULTS.steady)
    .option('--churn <n>', 'new listeners a second, each staying a few seconds', parsePositiveInt, SOAK_DEFAULTS.churnPerSecond)
    .option('--storm <n>', 'listeners dropped together once, half way, coming straight back', parsePositiveInt, SOAK_DEFAULTS.storm)
    .option('--set <key=value>', 'a setting for the server started here (repeatable)', collect, [])
    .option('--seed <n>', 'seed for backoff jitter and reactions', parsePositiveInt, 1)
    .option('--json <file>', 'write the result as JSON')
    .action(async (o: { target?: string; token?: string; seconds: number; steady: number; churn: number; storm: number; set: string[]; seed: number; json?: string }) => {
      // the server started here sees its whole crowd on one loopback address
      const server = o.target ? null : await serveChild(BIN, [...ONE_ADDRESS_CROWD_SETS, ...o.set]);
      const out = process.stdout;
      try {
        const token = o.token ?? server?.token;
        out.write(`soaking ${o.target ?? server!.url} for ${o.seconds} s: ${o.steady} steady, ${o.churn}/s churning, a storm of ${o.storm} at ${Math.round(o.seconds / 2)} s\n`);
        const r = await runSoak({
          ...SOAK_DEFAULTS,
          base: new URL(o.target ?? server!.url),
          ...(token ? { token } : {}),
          seconds: o.seconds,
          steady: o.steady,
          churnPerSecond: o.churn,
          storm: o.storm,
          stormAtS: o.seconds / 2,
          clock: systemClock(),
          random: createRng(o.seed).next,
          onSample: (s) => {
            if (Math.round(s.t) % 10 === 0) out.write(`  ${s.t.toFixed(0).padStart(4)} s  ${String(s.connections).padStart(5)} connected  heap ${s.heapMiB.toFixed(1)} MiB  RSS ${s.rssMiB.toFixed(1)} MiB  fds ${s.fds}  loop p99 ${s.loopP99Ms.toFixed(1)} ms\n`);
          },
        });
        out.write(`${formatSoak(r)}\n`);
        if (o.json) out.write(`result: ${await writeJsonFile(o.json, r)}\n`);
        if (!r.pass) process.exitCode = 2;
      } finally {
        await server?.stop();
      }
    });
}
