import { Command, CommanderError } from 'commander';
import { registerCluster } from './cluster.js';
import { registerCompare } from './compare.js';
import { registerDashboards } from './dashboards.js';
import { registerFit } from './fit.js';
import { registerLoad } from './load.js';
import { registerProbe } from './probe.js';
import { registerReplay } from './replay.js';
import { registerServe } from './serve.js';
import { registerSoak } from './soak.js';
import { TOOL_NAME, TOOL_VERSION } from '../version.js';

/** Builds the `stampede` command tree. Every command has --help. */
export function buildProgram(): Command {
  const program = new Command(TOOL_NAME)
    .description('Replay the X Spaces outage of 12 August 2024 on a laptop, and load-test a live-audio server')
    .version(TOOL_VERSION)
    .showHelpAfterError()
    .exitOverride();
  registerReplay(program);
  registerCompare(program);
  registerFit(program);
  registerLoad(program);
  registerServe(program);
  registerProbe(program);
  registerSoak(program);
  registerCluster(program);
  registerDashboards(program);
  return program;
}

/** Entry point used by bin/stampede.js; resolves to the process exit code. */
export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv, { from: 'user' });
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode;
    throw err;
  }
}
