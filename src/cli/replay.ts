import { resolve } from 'node:path';
import { InvalidArgumentError, type Command } from 'commander';
import { systemClock } from '../clock.js';
import { createLogger } from '../logging.js';
import { createReplay } from '../replay/index.js';
import { buildReport, writeReport } from '../report/index.js';
import { loadScenario, type ReplayStep } from '../sim/index.js';
import { collect, parsePort, parsePositiveInt, untilSignal } from './common.js';
import { ProgressLine } from './progress.js';

export const DEFAULT_SCENARIO = 'scenarios/x-spaces-2024-08-12.yaml';
/** 60×: the 185-minute night in a little over three minutes, and the shipped speed-60 SLO rules fit. */
export const DEFAULT_SPEED = 60;

function parseSpeed(v: string): number | 'max' {
  if (v === 'max') return 'max';
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError("expected a positive number or 'max'");
  return n;
}

interface ReplayOpts {
  speed?: number | 'max';
  seed: number;
  set: string[];
  out: string;
  port?: number;
  host: string;
  listeners: number;
  server: boolean;
  logLevel: string;
}

/** Unix ms as a wall-clock time (HH:MM) in the scenario's time zone. */
function simClock(ms: number, timeZone: string): string {
  return new Date(ms).toLocaleTimeString('en-US', { timeZone, hour: '2-digit', minute: '2-digit', hour12: false });
}

function fmt(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

export function registerReplay(program: Command): void {
  program
    .command('replay')
    .description('replay a scenario (default: the X Spaces night of 12 Aug 2024) with the server live, and write a report')
    .argument('[scenario]', 'scenario file (YAML or JSON)', DEFAULT_SCENARIO)
    .option('--speed <n|max>', "simulated seconds per wall second, or 'max' (no server unless --port is given)", parseSpeed)
    .option('--seed <n>', 'seed for the crowd model and the real clients', parsePositiveInt, 1)
    .option('--set <path=value>', 'override a scenario parameter (repeatable), e.g. --set assumptions.capacity.keyframes[0].joinsPerSecond=20000', collect, [])
    .option('--out <dir>', 'where report.json and report.md go', 'out')
    .option('-p, --port <n>', 'server port (0 = any free port)', parsePort)
    .option('-H, --host <addr>', 'address to bind', '127.0.0.1')
    .option('--listeners <n>', 'real listeners that join through the live server', parsePositiveInt, 200)
    .option('--no-server', 'run the model alone (the default with --speed max)')
    .option('--log-level <level>', 'server log level', 'warn')
    .action(async (scenarioFile: string, o: ReplayOpts) => {
      process.exitCode = await replayCommand(scenarioFile, o);
    });
}

/** argv → options → createReplay → exit code. */
async function replayCommand(scenarioFile: string, o: ReplayOpts): Promise<number> {
  const speed = o.speed ?? DEFAULT_SPEED;
  const withServer = o.server && (speed !== 'max' || o.port !== undefined);
  const scenario = await loadScenario(scenarioFile, o.set);
  const clock = systemClock();
  const out = process.stdout;
  const progress = new ProgressLine(out);
  const tz = scenario.event.timeZone;
  const logLevel = o.logLevel as 'warn';
  const replay = createReplay({
    scenario,
    seed: o.seed,
    speed,
    clock,
    logger: createLogger({ level: logLevel, pretty: process.stderr.isTTY }),
    ...(withServer ? { server: { port: o.port ?? 8080, host: o.host, logLevel }, listeners: o.listeners } : {}),
    onStep: (s: ReplayStep) => {
      const c = replay.realCrowd();
      const real = c ? ` · real ${c.connected}/${o.listeners} in, ${c.admitted}/${c.attempts} joins ok` : '';
      progress.update(`${simClock(s.t, tz)} ET  ${s.phase.padEnd(8)} listeners ${fmt(s.listeners).padStart(9)}  join availability ${(s.availability * 100).toFixed(1).padStart(5)}%  offered ${fmt(s.offered).padStart(8)}/s${real}`, clock.now());
    },
  });
  // the runner prints progress while start() is still bringing up listeners: a Ctrl-C then is held, not fatal
  let early = false;
  const hold = (): void => {
    early = true;
  };
  process.on('SIGINT', hold);
  process.on('SIGTERM', hold);
  const started = await replay.start().finally(() => {
    process.off('SIGINT', hold);
    process.off('SIGTERM', hold);
  });
  if (started.url) {
    const url = started.url;
    out.write(`Replaying ${scenario.event.name} at ${speed}× — server live on ${url}\n  API      ${url}/api/v1/spaces/${started.spaceId}\n  replay   ${url}/api/v1/replay\n  metrics  ${url}/metrics\n  page     ${url}/\n`);
    if (started.listeners > 0) out.write(`  ${started.listeners} real listeners join through the same join path\n`);
  } else {
    out.write(`Replaying ${scenario.event.name} at ${speed === 'max' ? 'full' : `${speed}×`} speed, model only\n`);
  }
  const why = early ? (await replay.stop(), 'signal') : await untilSignal(() => replay.stop(), replay.finished);
  progress.done();
  if (why === 'signal') {
    out.write('interrupted: no report written\n');
    return 130;
  }
  const report = buildReport(await replay.finished);
  const { jsonPath, mdPath } = await writeReport(resolve(o.out), report);
  out.write(`\n${report.summary}\n\nreport: ${jsonPath}\n        ${mdPath}\n`);
  return 0;
}
