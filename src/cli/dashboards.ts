import { resolve } from 'node:path';
import { InvalidArgumentError, type Command } from 'commander';
import { collect } from './common.js';

function parseSpeed(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 2) throw new InvalidArgumentError('expected a whole replay speed ≥ 2 (speed 1 is dashboards/prometheus/rules)');
  return n;
}

export function registerDashboards(program: Command): void {
  program
    .command('dashboards')
    .description('write the Grafana dashboards and the Prometheus SLO rules (real time and --speed 60) from src/dashboards; --speed N adds rules for a replay at N×')
    .option('--root <dir>', 'directory that holds dashboards/', '.')
    .option('--speed <n>', 'also write dashboards/prometheus/rules-speed<n>/ for a replay at that speed (repeatable)', (v: string, prev: string[]) => collect(String(parseSpeed(v)), prev), [])
    .addHelpText('after', '\nExamples:\n  $ stampede dashboards\n  $ stampede dashboards --speed 30 --root /tmp/stampede-rules')
    .action(async (o: { root: string; speed: string[] }) => {
      // loaded only here: the rest of the CLI does not need Grafana's schema
      const { writeGenerated } = await import('../dashboards/generate.js');
      const written = await writeGenerated(resolve(o.root), o.speed.map(Number));
      for (const f of written) process.stdout.write(`wrote ${f}\n`);
    });
}
