import { resolve } from 'node:path';
import { InvalidArgumentError, type Command } from 'commander';
import { createApp } from '../app.js';
import { systemClock } from '../clock.js';
import { createLogger } from '../logging.js';
import { Swarm } from '../load/index.js';
import { LiveReplayPort } from '../replay-port.js';
import { buildReport, writeReport } from '../report/index.js';
import { createRng, demandQuantiles, loadScenario, runReplay, type ReplayStep } from '../sim/index.js';
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
  speed: number | 'max';
  seed: number;
  set: string[];
  out: string;
  port: number;
  host: string;
  listeners: number;
  server: boolean;
  logLevel: string;
}

function etClock(iso: number, timeZone: string): string {
  return new Date(iso).toLocaleTimeString('en-US', { timeZone, hour: '2-digit', minute: '2-digit', hour12: false });
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
    .action(async (scenarioFile: string, o: Partial<ReplayOpts> & { set: string[]; out: string; seed: number; listeners: number; host: string; logLevel: string; server: boolean }) => {
      const speed = o.speed ?? DEFAULT_SPEED;
      const withServer = o.server && (speed !== 'max' || o.port !== undefined);
      const scenario = await loadScenario(scenarioFile, o.set);
      const clock = systemClock();
      const rng = createRng(o.seed);
      const out = process.stdout;
      const progress = new ProgressLine(out);
      const tz = scenario.event.timeZone;
      const abort = new AbortController();
      let app: ReturnType<typeof createApp> | null = null;
      let port: LiveReplayPort | undefined;
      let crowd: Swarm | null = null;
      if (withServer) {
        const logger = createLogger({ level: o.logLevel as 'warn', pretty: process.stderr.isTTY });
        app = createApp({ logger, clock, random: rng.fork('server').next, server: { port: o.port ?? 8080, host: o.host, demoSpace: false, logLevel: o.logLevel as 'warn' } });
        const url = await app.start();
        port = new LiveReplayPort({
          server: app.server,
          metrics: app.metrics,
          title: scenario.event.name,
          hostName: scenario.event.host ?? 'host',
          scheduledStartMs: scenario.scheduledStartMs,
          scenarioName: scenario.event.name,
          speed,
        });
        out.write(`Replaying ${scenario.event.name} at ${speed}× — server live on ${url}\n  API      ${url}/api/v1/spaces/${port.space.id}\n  replay   ${url}/api/v1/replay\n  metrics  ${url}/metrics\n  page     ${url}/\n`);
        if (o.listeners > 0) {
          // real clients arrive as the modelled crowd does, mapped from simulated to wall time
          const sp = speed === 'max' ? Infinity : speed;
          const arrivalsMs = demandQuantiles(scenario, o.listeners).map((t) => (t - scenario.replayFromMs) / sp);
          crowd = new Swarm({
            base: new URL(url),
            spaceId: port.space.id,
            arrivalsMs,
            maxListeners: o.listeners,
            holdMs: 0,
            reconnect: 'jitter',
            backoffBaseMs: 250,
            backoffCapMs: 5_000,
            reactionsPerMinute: 1,
            dropAfterMs: 0,
            timeoutMs: 10_000,
            clock,
            random: rng.fork('crowd').next,
          });
          crowd.start();
          out.write(`  ${o.listeners} real listeners join through the same join path\n`);
        }
      } else {
        out.write(`Replaying ${scenario.event.name} at ${speed === 'max' ? 'full' : `${speed}×`} speed, model only\n`);
      }
      const onStep = (s: ReplayStep): void => {
        const real = crowd ? ` · real ${crowd.connected}/${o.listeners} in, ${crowd.admitted}/${crowd.attempts} joins ok` : '';
        progress.update(`${etClock(s.t, tz)} ET  ${s.phase.padEnd(8)} listeners ${fmt(s.listeners).padStart(9)}  join availability ${(s.availability * 100).toFixed(1).padStart(5)}%  offered ${fmt(s.offered).padStart(8)}/s${real}`, clock.now());
      };
      const run = runReplay({ scenario, seed: o.seed, speed, clock, ...(port ? { port } : {}), onStep, signal: abort.signal });
      const stop = async (): Promise<void> => {
        abort.abort();
        await run.catch(() => undefined);
        await crowd?.stop();
        port?.finish();
        await app?.stop();
      };
      const why = withServer ? await untilSignal(stop, run) : (await run, 'done');
      progress.done();
      if (why === 'signal') {
        out.write('interrupted: no report written\n');
        process.exitCode = 130;
        return;
      }
      const result = await run;
      const report = buildReport(result);
      const { jsonPath, mdPath } = await writeReport(resolve(o.out), report);
      out.write(`\n${report.summary}\n\nreport: ${jsonPath}\n        ${mdPath}\n`);
    });
}
