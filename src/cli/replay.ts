import { constants } from 'node:fs';
import { access, mkdir, rmdir } from 'node:fs/promises';
import { resolve } from 'node:path';
import { InvalidArgumentError, type Command } from 'commander';
import { systemClock } from '../clock.js';
import { createLogger } from '../logging.js';
import { createReplay, type ClusterRun, type RealCrowdSummary } from '../replay/index.js';
import { type ClusterShare, type RealListenersShare, buildReport, createRunDir, fileSha256, localClock, pointLatest, runDirName, writeReport, zoneLabel } from '../report/index.js';
import { TOOL_NAME, TOOL_VERSION } from '../version.js';
import { loadScenario, type ReplayStep } from '../sim/index.js';
import { MAX_INSTANCES } from '../cluster/index.js';
import { parseInstances } from './cluster.js';
import { collect, parsePort, parseWholeNumber, parseWorkers, untilSignal } from './common.js';
import { OPERATOR_TOKEN_ENV } from './serve.js';
import { ReplayProgress } from './replay-progress.js';

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
  /** Exactly where the report goes; without it, a fresh folder under out/ (and out/latest points at it). */
  out?: string;
  quiet: boolean;
  /** Keep serving after the night (default: when a person is at the terminal). */
  stay?: boolean;
  port?: number;
  host: string;
  listeners: number;
  server: boolean;
  logLevel: string;
  instances: number;
  clusterDir: string;
  workers: number;
}


/**
 * The folder a run's report goes to: exactly `--out`, or a new one under out/ that out/latest then points at.
 * Made (and checked writable) before the night starts: a folder that cannot take the report is said at once,
 * not after a live replay of several minutes. `made` is true when this call created `dir` (an interrupted run
 * takes it away again if it is still empty).
 */
async function reportDir(o: ReplayOpts, scenarioFile: string, startedAt: Date): Promise<{ dir: string; root: string | null; made: boolean }> {
  if (o.out !== undefined) {
    const dir = resolve(o.out);
    const made = (await mkdir(dir, { recursive: true })) !== undefined;
    await access(dir, constants.W_OK);
    return { dir, root: null, made };
  }
  const root = resolve('out');
  return { dir: await createRunDir(root, runDirName(startedAt, scenarioFile, o.set)), root, made: true };
}

export function registerReplay(program: Command): void {
  program
    .command('replay')
    .description('replay a scenario (default: the X Spaces night of 12 Aug 2024) with the server live, and write a report')
    .argument('[scenario]', 'scenario file (YAML or JSON)', DEFAULT_SCENARIO)
    .option('--speed <n|max>', "simulated seconds per wall second, or 'max' (no server unless --port is given)", parseSpeed)
    .option('--seed <n>', 'seed for the crowd model and the real clients', parseWholeNumber, 1)
    .option('--set <path=value>', 'override a scenario parameter (repeatable), e.g. --set assumptions.capacity.keyframes[0].joinsPerSecond=20000', collect, [])
    .option('--out <dir>', 'write the report exactly here (default: a new folder per run under out/, with out/latest pointing at the newest)')
    .option('-p, --port <n>', 'server port (0 = any free port)', parsePort)
    .option('-H, --host <addr>', 'address to bind', '127.0.0.1')
    .option('--listeners <n>', 'real listeners that join through the live server', parseWholeNumber, 200)
    .option('--no-server', 'run the model alone (the default with --speed max)')
    .option('-n, --instances <n>', `replay on a cluster: Redis, haproxy on --port and N server instances on loopback; the real listeners join through the proxy (1 = one process, the default; 2–${MAX_INSTANCES})`, parseInstances, 1)
    .option('-w, --workers <n>', 'spread the real listeners over N load worker threads (as `stampede load --workers`); their HDR histograms are merged exactly into the report (1 = this process, the default; at most 64)', parseWorkers, 1)
    .option('--cluster-dir <dir>', "with --instances ≥ 2: the instances' logs, haproxy.cfg and the shared recordings", 'out/replay-cluster')
    .option('--log-level <level>', 'server log level', 'warn')
    .option('-q, --quiet', 'no progress line: print only the summary and where the report went', false)
    .option('--stay', 'keep the server up after the night, for the dashboard and the recording, until Ctrl-C (the default at a terminal)')
    .option('--no-stay', 'stop the server when the night is over (the default when output is not a terminal)')
    .addHelpText(
      'after',
      `
Examples:
  the night on Redis, haproxy and 2 instances (the listeners join through the proxy; out/replay-cluster has the logs):
  $ stampede replay --instances 2 --port 0 --speed 1800 --listeners 10 --no-stay
  the real listeners spread over 2 load worker threads (their histograms merged into the report):
  $ stampede replay --workers 2 --port 0 --speed 1800 --listeners 20 --no-stay`,
    )
    .action(async (scenarioFile: string, o: ReplayOpts) => {
      process.exitCode = await replayCommand(scenarioFile, o);
    });
}

/** The report's account of a night on a cluster. */
function clusterShare(run: ClusterRun | null): { cluster: ClusterShare } | null {
  return run ? { cluster: { instances: run.instances, perInstance: run.perInstance } } : null;
}

/** The report's account of the real listeners, rounded as the report rounds latencies. */
function realListenersShare(c: RealCrowdSummary | null, listeners: number): { realListeners: RealListenersShare } | Record<string, never> {
  if (!c) return {};
  const r = (x: number | null): number | null => (x === null ? null : Math.round(x * 100) / 100);
  return {
    realListeners: {
      listeners,
      workers: c.workers,
      peakConnected: c.peakConnected,
      joins: { attempts: c.attempts, admitted: c.admitted, p50Ms: r(c.join.p50), p99Ms: r(c.join.p99) },
      audio: { chunks: c.chunks, gaps: c.gaps, p50Ms: r(c.audio.p50), p99Ms: r(c.audio.p99), maxMs: r(c.audio.max) },
      closes: c.closes,
      ...(c.perWorker.length > 1 ? { perWorker: c.perWorker.map((w) => ({ joinsAdmitted: w.admitted, chunks: w.chunks })) } : {}),
    },
  };
}

/** argv → options → createReplay → exit code. */
async function replayCommand(scenarioFile: string, o: ReplayOpts): Promise<number> {
  const startedAt = new Date();
  const speed = o.speed ?? DEFAULT_SPEED;
  const onCluster = o.instances > 1;
  if (onCluster && !o.server) {
    process.stderr.write('stampede: --instances needs the server: drop --no-server\n');
    return 2;
  }
  const withServer = o.server && (speed !== 'max' || o.port !== undefined || onCluster);
  if (o.workers > 1 && !withServer) {
    process.stderr.write(`stampede: --workers spreads the real listeners over threads and needs the server: ${o.server ? 'with --speed max, give --port' : 'drop --no-server'}\n`);
    return 2;
  }
  if (o.workers > 1 && o.workers > o.listeners) {
    process.stderr.write(`stampede: --workers ${o.workers} needs at least ${o.workers} real listeners (--listeners ${o.listeners})\n`);
    return 2;
  }
  const stay = withServer && (o.stay ?? process.stdout.isTTY === true);
  const scenario = await loadScenario(scenarioFile, o.set);
  const scenarioSha256 = await fileSha256(scenarioFile);
  let target: Awaited<ReturnType<typeof reportDir>>;
  try {
    target = await reportDir(o, scenarioFile, startedAt);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    process.stderr.write(`stampede: ${o.out !== undefined ? '--out' : 'out/'}: cannot write the report there: ${e.code ?? ''} ${e.path ?? e.message}\n`);
    return 1;
  }
  const { dir, root } = target;
  const clock = systemClock();
  const out = process.stdout;
  const progress = new ReplayProgress(out, { quiet: o.quiet });
  const tz = scenario.event.timeZone;
  const span = scenario.replayUntilMs - scenario.replayFromMs;
  const logLevel = o.logLevel as 'warn';
  const replay = createReplay({
    scenario,
    seed: o.seed,
    speed,
    clock,
    logger: createLogger({ level: logLevel, pretty: process.stderr.isTTY }),
    ...(withServer ? { server: { port: o.port ?? 8080, host: o.host, logLevel }, listeners: o.listeners, keepServing: stay } : {}),
    ...(o.workers > 1 ? { workers: { count: o.workers, entry: new URL('./load-worker.js', import.meta.url) } } : {}),
    ...(onCluster
      ? {
          cluster: {
            instances: o.instances,
            dir: o.clusterDir,
            logLevel,
            // the instances run this same CLI with this same Node, and share the configured operator token (or one made here)
            stampede: [process.execPath, process.argv[1]!],
            env: process.env,
            ...(process.env[OPERATOR_TOKEN_ENV] ? { operatorToken: process.env[OPERATOR_TOKEN_ENV] } : {}),
          },
        }
      : {}),
    onStep: (s: ReplayStep) => {
      const c = replay.realCrowd();
      progress.update(
        {
          clock: `${localClock(s.t, tz)} ${zoneLabel(s.t, tz)}`,
          done: (s.t - scenario.replayFromMs) / span,
          phase: s.phase,
          listeners: s.listeners,
          availability: s.availability,
          offered: s.offered,
          ...(c ? { real: { in: c.connected, of: o.listeners, admitted: c.admitted, attempts: c.attempts } } : {}),
        },
        s.t,
        clock.now(),
      );
    },
  });
  const say = (text: string): void => {
    if (!o.quiet) out.write(text);
  };
  // the runner prints progress while start() is still bringing up listeners: a Ctrl-C then is held, not fatal
  let early = false;
  const hold = (): void => {
    early = true;
  };
  process.on('SIGINT', hold);
  process.on('SIGTERM', hold);
  // a second Ctrl-C exits at once: the cluster's children (in their own process groups) must not outlive us
  const orphans = (): void => replay.killChildrenNow();
  if (onCluster) process.once('exit', orphans);
  const started = await replay.start().finally(() => {
    process.off('SIGINT', hold);
    process.off('SIGTERM', hold);
  });
  const whatIf = o.set.length ? `  what-if  ${o.set.map((x) => `--set ${x}`).join(' ')}\n` : '';
  // and listen for Ctrl-C / SIGTERM before announcing the server: a signal right after the banner stops it cleanly;
  // staying, the end of the night stops the model and the real listeners but not the server
  const stopped = early ? null : untilSignal(() => (stay ? Promise.resolve() : replay.stop()), replay.finished);
  const inWorkers = o.workers > 1 ? `, from ${o.workers} load worker threads` : '';
  if (started.cluster) {
    const c = started.cluster;
    say(
      [
        `Replaying ${scenario.event.name} at ${speed === 'max' ? 'full speed' : `${speed}×`} on ${c.instances.length} instances behind haproxy — server live on ${c.proxyUrl}`,
        ...(whatIf ? [whatIf.trimEnd()] : []),
        `  page      ${c.proxyUrl}/`,
        `  API       ${c.proxyUrl}/api/v1/spaces/${started.spaceId}   cluster ${c.proxyUrl}/api/v1/cluster`,
        ...c.instances.map((i) => `  ${i.id.padEnd(9)} ${i.url}   metrics ${i.url}/metrics   log ${i.logFile}`),
        `  replay    ${started.url}   dashboard ${started.url}/dashboard   (the model's own instance: owns the space, publishes the model over Redis)`,
        `  redis     ${c.redisUrl}`,
        ...(started.listeners > 0 ? [`  ${started.listeners} real listeners join through the proxy${inWorkers}`] : []),
        '',
      ].join('\n'),
    );
  } else if (started.url) {
    const url = started.url;
    say(`Replaying ${scenario.event.name} at ${speed === 'max' ? 'full speed' : `${speed}×`} — server live on ${url}\n${whatIf}  dashboard ${url}/dashboard\n  page     ${url}/\n  API      ${url}/api/v1/spaces/${started.spaceId}\n  replay   ${url}/api/v1/replay\n  metrics  ${url}/metrics\n`);
    if (started.listeners > 0) say(`  ${started.listeners} real listeners join through the same join path${inWorkers}\n`);
  } else {
    say(`Replaying ${scenario.event.name} at ${speed === 'max' ? 'full' : `${speed}×`} speed, model only\n${whatIf}`);
  }
  progress.begin();
  const why = stopped ? await stopped : (await replay.stop(), 'signal');
  progress.done();
  if (why === 'signal') {
    await replay.stop();
    out.write('interrupted: no report written\n');
    if (target.made) await rmdir(dir).catch(() => undefined);
    return 130;
  }
  const result = await replay.finished;
  const report = buildReport(result, {
    scenarioFile,
    scenarioSha256,
    overrides: o.set,
    seed: o.seed,
    speed,
    tool: `${TOOL_NAME} ${TOOL_VERSION}`,
    startedAt: startedAt.toISOString(),
    finishedAt: new Date().toISOString(),
    ...(clusterShare(replay.clusterRun()) ?? {}),
    ...realListenersShare(replay.realCrowdSummary(), o.listeners),
    ...(result.schedule ? { schedule: { steps: result.steps, lateSteps: result.schedule.lateSteps, maxBehindMs: Math.round(result.schedule.maxBehindMs) } } : {}),
  });
  const { htmlPath, mdPath, jsonPath } = await writeReport(dir, report);
  if (root) await pointLatest(root, dir);
  out.write(`\n${report.summary}\n${o.set.length ? `  what-if: ${o.set.join(' ')}\n` : ''}\nreport: ${htmlPath}\n        ${mdPath}\n        ${jsonPath}\n${root ? `        (${root}/latest points here)\n` : ''}`);
  if (stay && started.url) {
    out.write(`\nThe night is over; the server stays up: the dashboard at ${started.url}/dashboard, the recording at ${started.url}/ — Ctrl-C to stop.\n`);
    await untilSignal(() => replay.stop());
  }
  return 0;
}
