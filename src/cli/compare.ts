import { mkdir, rename, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { manualClock } from '../clock.js';
import { buildReport, compareAccounts } from '../report/index.js';
import { loadScenario, runReplay } from '../sim/index.js';
import { collect, parseWholeNumber } from './common.js';

export const ACCOUNTS = ['scenarios/x-spaces-2024-08-12.yaml', 'scenarios/x-spaces-2024-08-12-ddos.yaml'];

export function registerCompare(program: Command): void {
  program
    .command('compare')
    .description('replay several accounts of the night (model only, full speed) and say which fits the facts better')
    .argument('[scenarios...]', 'scenario files', ACCOUNTS)
    .option('--seed <n>', 'seed for every replay', parseWholeNumber, 1)
    .option('--set <path=value>', 'override applied to every scenario (repeatable)', collect, [])
    .option('--out <dir>', 'where compare.json goes', 'out')
    .action(async (files: string[], o: { seed: number; set: string[]; out: string }) => {
      const reports = [];
      for (const f of files) {
        const scenario = await loadScenario(f, o.set);
        // 'max' never sleeps, so the clock is never read for waiting: a manual one keeps it pure
        reports.push(buildReport(await runReplay({ scenario, seed: o.seed, speed: 'max', clock: manualClock(0) })));
      }
      const { best, ranking } = compareAccounts(reports);
      const out = process.stdout;
      for (const r of ranking) out.write(`${r === ranking[0] ? '→' : ' '} ${r.fidelity === 1 ? 'all facts met' : `${Math.round(r.fidelity * 100)}% of facts met`}, mean distance ${r.meanError}: ${r.scenario}\n`);
      out.write(`\nBest fit: ${best.account}\n`);
      const dir = resolve(o.out);
      await mkdir(dir, { recursive: true });
      const path = join(dir, 'compare.json');
      await writeFile(`${path}.tmp`, `${JSON.stringify({ seed: o.seed, best: best.scenario, ranking }, null, 2)}\n`);
      await rename(`${path}.tmp`, path);
      out.write(`written: ${path}\n`);
    });
}
