import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { manualClock } from '../clock.js';
import { buildReport, compareAccounts, compareText, fileSha256, labelRuns, readRun, writeCompare, type Report } from '../report/index.js';
import { loadScenario, runReplay } from '../sim/index.js';
import { TOOL_NAME, TOOL_VERSION } from '../version.js';
import { collect, parseWholeNumber } from './common.js';

export const ACCOUNTS = ['scenarios/x-spaces-2024-08-12.yaml', 'scenarios/x-spaces-2024-08-12-ddos.yaml'];

/** A scenario replayed model-only at full speed, with its run recorded like any other. */
export async function replayModelOnly(file: string, overrides: string[], seed: number): Promise<Report> {
  const startedAt = new Date().toISOString();
  const scenario = await loadScenario(file, overrides);
  // 'max' never sleeps, so the clock is never read for waiting: a manual one keeps it pure
  const result = await runReplay({ scenario, seed, speed: 'max', clock: manualClock(0) });
  return buildReport(result, { scenarioFile: file, scenarioSha256: await fileSha256(file), overrides, seed, speed: 'max', tool: `${TOOL_NAME} ${TOOL_VERSION}`, startedAt, finishedAt: new Date().toISOString() });
}

/** A run folder or report.json is read; anything else is a scenario file to replay. */
async function isRun(path: string): Promise<boolean> {
  if (path.endsWith('report.json')) return true;
  try {
    return (await stat(path)).isDirectory();
  } catch {
    return false;
  }
}

export function registerCompare(program: Command): void {
  program
    .command('compare')
    .description('show runs side by side: run folders (out/…) are read, scenario files are replayed (model only, full speed); overlay charts and what changed')
    .argument('[runs-or-scenarios...]', 'run folders, report.json files or scenario files (default: both accounts of the night)')
    .option('--seed <n>', 'seed for every scenario replayed here', parseWholeNumber, 1)
    .option('--set <path=value>', 'override applied to every scenario file given (repeatable)', collect, [])
    .option('--what-if <overrides>', "one more run of the first scenario with these overrides (space-separated path=value; repeatable), e.g. --what-if 'assumptions.clients.retry.policy=jittered'", collect, [])
    .option('--out <dir>', 'where compare.json, compare.md, compare.html and the charts go', 'out/compare')
    .action(async (inputs: string[], o: { seed: number; set: string[]; whatIf: string[]; out: string }) => {
      const given = inputs.length ? inputs : o.whatIf.length ? [ACCOUNTS[0]!] : ACCOUNTS;
      const reports: Report[] = [];
      let firstScenario: string | null = null;
      for (const input of given) {
        if (await isRun(input)) reports.push(await readRun(input));
        else {
          firstScenario ??= input;
          reports.push(await replayModelOnly(input, o.set, o.seed));
        }
      }
      for (const w of o.whatIf) {
        const file = firstScenario ?? reports[0]?.run?.scenarioFile ?? ACCOUNTS[0]!;
        const base = firstScenario ? o.set : (reports[0]?.run?.overrides ?? []);
        reports.push(await replayModelOnly(file, [...base, ...w.split(/\s+/).filter(Boolean)], o.seed));
      }
      const runs = labelRuns(reports);
      const { best, ranking } = compareAccounts(reports);
      const dir = resolve(o.out);
      const { rows, htmlPath, mdPath, jsonPath } = await writeCompare(dir, runs, { seed: o.seed, best: best.scenario, ranking });
      const out = process.stdout;
      out.write(`${compareText(rows)}\n\n`);
      const label = runs.find((r) => r.report === best)!.label;
      out.write(`Best fit to the facts: ${label} (${best.expectations.filter((e) => e.pass).length}/${best.expectations.length} facts, mean distance ${best.meanError})\n`);
      out.write(`\nwritten: ${htmlPath}\n         ${mdPath}\n         ${jsonPath}\n`);
    });
}
