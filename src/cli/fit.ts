import { mkdir, readFile } from 'node:fs/promises';
import { basename, dirname, extname, join, resolve } from 'node:path';
import { InvalidArgumentError, type Command } from 'commander';
import { fitScenario, parseVary, type FitResult, type Vary } from '../fit/index.js';
import { writeAtomic } from '../write-atomic.js';
import { ScenarioError } from '../sim/index.js';
import { collect, parsePositiveInt } from './common.js';

function collectVary(v: string, prev: Vary[]): Vary[] {
  try {
    return [...prev, parseVary(v)];
  } catch (err) {
    throw new InvalidArgumentError((err as ScenarioError).issues[0]!.message);
  }
}

const num = (n: number | null): string => (n === null ? '—' : n.toFixed(3));

/** What `fit` prints: values, the two errors before and after, every fact, and the sensitivity table. */
export function formatFit(r: FitResult, file: string): string {
  const met = (x: FitResult['before']): string => `${x.expectations.filter((e) => e.pass).length}/${x.expectations.length}`;
  const held = r.after.expectations.filter((e) => e.holdOut).length;
  const out: string[] = [];
  out.push(`Fitted ${file}: ${r.vary.length} assumption${r.vary.length === 1 ? '' : 's'} to ${r.after.expectations.length - held} facts (${held} held out); ${r.evaluations} replays, ${r.iterations} iterations`);
  const w = Math.max(...r.vary.map((v) => v.path.length));
  for (const v of r.vary) out.push(`  ${v.path.padEnd(w)}  ${String(v.start).padStart(9)} → ${String(v.value).padEnd(9)} (range ${v.lo}..${v.hi})`);
  out.push(`  facts met                      ${met(r.before)} → ${met(r.after)}`);
  out.push(`  mean distance, fitted facts    ${num(r.errorsBefore.fitted)} → ${num(r.errorsAfter.fitted)}`);
  out.push(`  mean distance, held-out facts  ${num(r.errorsBefore.heldOut)} → ${num(r.errorsAfter.heldOut)}`);
  for (const e of r.after.expectations) out.push(`  ${e.pass ? 'PASS' : 'FAIL'}  ${e.holdOut ? '(held out) ' : ''}${e.name}: ${e.actual} (distance ${e.error})`);
  out.push('', 'Sensitivity: change in each fact\'s distance when an assumption moves up a tenth of its range');
  out.push(`  ${'fact'.padEnd(40)} ${r.vary.map((v, i) => `#${i + 1}`.padStart(8)).join('')}`);
  for (const s of r.sensitivity) out.push(`  ${`${s.holdOut ? '(h) ' : ''}${s.fact}`.slice(0, 40).padEnd(40)} ${s.perAssumption.map((p) => p.errorChange.toFixed(3).padStart(8)).join('')}`);
  out.push(`  ${r.vary.map((v, i) => `#${i + 1} ${v.path}`).join('  ')}`);
  return out.join('\n');
}

export function registerFit(program: Command): void {
  program
    .command('fit')
    .description("tune a scenario's assumptions to its facts (held-out facts only checked) and write the fitted scenario")
    .argument('<scenario>', 'scenario file (YAML or JSON)')
    .requiredOption('--vary <path=lo..hi>', 'an assumption to tune and its range (repeatable), for example assumptions.demand.scale=0.2..1.5', collectVary, [])
    .option('--set <path=value>', 'override applied before fitting and kept in the written file (repeatable)', collect, [])
    .option('--seed <n>', 'seed for the replays and the random starting points', parsePositiveInt, 1)
    .option('--starts <n>', "starting points: the scenario's own values, then seeded random ones", parsePositiveInt, 4)
    .option('--iterations <n>', 'at most this many optimiser iterations per start', parsePositiveInt, 40)
    .option('--out <dir>', 'where fit.json and the fitted scenario go', 'out')
    .option('--write <file>', 'the fitted scenario file (default: <out>/<name>.fitted.yaml)')
    .action(async (file: string, o: { vary: Vary[]; set: string[]; seed: number; starts: number; iterations: number; out: string; write?: string }) => {
      let text: string;
      try {
        text = await readFile(file, 'utf8');
      } catch (err) {
        throw new ScenarioError(file, [{ path: '(file)', message: `cannot read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}` }]);
      }
      const ext = extname(file) || '.yaml';
      const target = resolve(o.write ?? join(o.out, `${basename(file, ext)}.fitted${ext}`));
      if (target === resolve(file)) throw new ScenarioError(file, [{ path: '--write', message: 'the fitted scenario is a new file: it never overwrites the one fitted' }]);
      const r = fitScenario({ text, file, set: o.set, vary: o.vary, seed: o.seed, starts: o.starts, maxIterations: o.iterations });
      await mkdir(dirname(target), { recursive: true });
      await mkdir(resolve(o.out), { recursive: true });
      await writeAtomic(target, r.text);
      const json = join(resolve(o.out), 'fit.json');
      const { text: _text, before, after, ...rest } = r;
      await writeAtomic(json, `${JSON.stringify({ file, seed: o.seed, ...rest, before: { expectations: before.expectations, fidelity: before.fidelity }, after: { expectations: after.expectations, fidelity: after.fidelity }, written: target }, null, 2)}\n`);
      process.stdout.write(`${formatFit(r, file)}\n\nwritten: ${target}\n         ${json}\n`);
    });
}
