import { createWriteStream, existsSync, readdirSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { InvalidArgumentError, type Command } from 'commander';
import { createApp } from '../app.js';
import { systemClock } from '../clock.js';
import { ONE_ADDRESS_CROWD } from '../config.js';
import { createLogger } from '../logging.js';
import { createClientMetrics, formatSummary, loadPlan, MergedMetrics, parseThreshold, ProfileError, runLoad, type IntervalLine, type LoadResult } from '../load/index.js';
import { MetricsEndpoint } from '../metrics/endpoint.js';
import { writeAtomic } from '../write-atomic.js';
import { createRng } from '../sim/index.js';
import { parsePort, parsePositiveInt, parseWholeNumber, parseWorkers, untilSignal } from './common.js';
import { ProgressLine } from './progress.js';

/** Exit status when a threshold fails (or aborts the run), as k6 uses. */
export const EXIT_THRESHOLDS_FAILED = 99;

const PROFILE_DIR = 'scenarios';

/** The shipped profiles: scenarios/load-<name>.yaml. */
export function profileNames(dir = PROFILE_DIR): string[] {
  try {
    return readdirSync(dir)
      .filter((f) => /^load-.+\.ya?ml$/.test(f))
      .map((f) => f.replace(/^load-|\.ya?ml$/g, ''))
      .sort();
  } catch {
    return [];
  }
}

/** A profile by name (scenarios/load-<name>.yaml) or by path; an unknown name lists the profiles there are. */
export function profilePath(nameOrPath: string): string {
  if (existsSync(nameOrPath)) return nameOrPath;
  const shipped = `${PROFILE_DIR}/load-${nameOrPath}.yaml`;
  if (existsSync(shipped)) return shipped;
  const names = profileNames();
  throw new ProfileError(nameOrPath, [
    { path: '(profile)', message: `no such file, and no profile of that name; profiles${names.length ? `: ${names.join(', ')}` : ` would be in ${resolve(PROFILE_DIR)} (none found there)`}` },
  ]);
}

function parseOut(v: string, prev: string[]): string[] {
  if (!/^ndjson=.+/.test(v)) throw new InvalidArgumentError('expected ndjson=FILE (one JSON line per scenario, request kind and second)');
  return [...prev, v.slice('ndjson='.length)];
}

function parseThresholdFlag(v: string, prev: string[]): string[] {
  try {
    parseThreshold(v);
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
  return [...prev, v];
}

interface LoadOpts {
  target?: string;
  space?: string;
  token?: string;
  duration?: number;
  json?: string;
  out: string[];
  threshold: string[];
  metricsPort?: number;
  seed: number;
  workers: number;
  quiet?: boolean;
}

export function registerLoad(program: Command): void {
  program
    .command('load')
    .description('run a load profile or several named scenarios at once (autocannon for HTTP, a WebSocket swarm) against a server; without --target it starts its own')
    .argument('<profile>', `profile name (${profileNames().join(', ')}) or a file`)
    .option('--target <url>', 'server to load (loopback only); default: start one here')
    .option('--space <id>', 'space to load (default: the first live space)')
    .option('--token <token>', "the target's operator token: creates a space (with a synthetic host) when the target has none; default $STAMPEDE_OPERATOR_TOKEN")
    .option('--duration <s>', 'cut the run to at most this many seconds', parsePositiveInt)
    .option('--threshold <expr>', 'a threshold over every scenario together, e.g. "p(95)<200" or "join.availability>0.99" (repeatable)', parseThresholdFlag, [])
    .option('--json <file>', "write the results as JSON ('-' for stdout; the summary then goes to stderr)")
    .option('--out <ndjson=file>', 'stream one JSON line per scenario, request kind and second to a file (repeatable)', parseOut, [])
    .option('--metrics-port <n>', "serve the load generator's own metrics on 127.0.0.1:<n>/metrics", parsePort)
    .option('--seed <n>', 'seed for backoff jitter and reactions', parseWholeNumber, 1)
    .option('--workers <n>', 'run the load in N worker threads, each a share of every scenario; HDR histograms merged exactly into one report', parseWorkers, 1)
    .option('-q, --quiet', 'no progress line and no banner; only the summary (and the JSON)')
    .addHelpText(
      'after',
      [
        '',
        'Exit status: 0 when every threshold holds, 99 when one fails or aborts the run (as k6), 1 on an error.',
        'Profiles may use ${NAME} and ${NAME:-default} from the environment.',
        '',
        'Examples:',
        '  $ stampede load join-storm',
        '  $ stampede load night --quiet --json -',
        '  $ stampede load details-poll --threshold "p(95)<200" --threshold "availability>0.99"',
        '  $ stampede load ws-listeners --out ndjson=out/load.ndjson --duration 2',
        '  $ stampede load join-storm --workers 2',
      ].join('\n'),
    )
    .action(async (name: string, o: LoadOpts) => {
      const plan = await loadPlan(profilePath(name), process.env);
      const clock = systemClock();
      const rng = createRng(o.seed);
      const metrics = createClientMetrics();
      const jsonToStdout = o.json === '-';
      // people read the summary; with the JSON on stdout it goes to stderr so the JSON stays parseable
      const human = jsonToStdout ? process.stderr : process.stdout;
      const say = (text: string): void => void (o.quiet ? undefined : human.write(`${text}\n`));
      let app: ReturnType<typeof createApp> | null = null;
      let target = o.target;
      if (!target) {
        // its own server: the load's many clients all come from this one loopback address
        app = createApp({ logger: createLogger({ level: 'warn' }), clock, random: rng.fork('server').next, server: { port: 0, ...ONE_ADDRESS_CROWD } });
        target = await app.start();
        say(`started a server for the test on ${target}`);
      }
      const merged = o.workers > 1 ? new MergedMetrics() : null;
      const endpoint = o.metricsPort === undefined ? null : new MetricsEndpoint({ registry: merged ?? metrics.registry, host: '127.0.0.1', port: o.metricsPort });
      if (endpoint) say(`load generator metrics on ${await endpoint.start()}`);
      const streams = o.out.map((f) => {
        const file = resolve(f);
        return { file, ready: mkdir(dirname(file), { recursive: true }).then(() => createWriteStream(file)) };
      });
      const files = await Promise.all(streams.map((s) => s.ready));
      const progress = o.quiet ? null : new ProgressLine(human, 2_000);
      const abort = new AbortController();
      const run = runLoad({
        plan,
        target,
        ...(o.space ? { spaceId: o.space } : {}),
        ...(o.token ?? process.env.STAMPEDE_OPERATOR_TOKEN ? { token: o.token ?? process.env.STAMPEDE_OPERATOR_TOKEN! } : {}),
        ...(o.duration ? { durationS: o.duration } : {}),
        thresholds: o.threshold,
        clock,
        random: rng.fork('load').next,
        metrics,
        signal: abort.signal,
        ...(merged ? { workers: { count: o.workers, seed: o.seed, entry: new URL('./load-worker.js', import.meta.url), metrics: merged } } : {}),
        ...(files.length ? { onInterval: (lines: IntervalLine[]) => lines.forEach((l) => files.forEach((f) => f.write(`${JSON.stringify(l)}\n`))) } : {}),
        onProgress: (p) => progress?.update(`${p.elapsedS.toFixed(0)}/${p.totalS.toFixed(0)} s  requests ${p.requests}  ok ${p.ok}${p.connected !== undefined ? `  connected ${p.connected}` : ''}`, clock.now()),
      });
      let result: LoadResult | null = null;
      try {
        await untilSignal(async () => {
          abort.abort();
          await run.catch(() => undefined);
        }, run);
        result = await run;
      } finally {
        await app?.stop();
        await endpoint?.stop();
        for (const f of files) {
          if (result) f.write(`${JSON.stringify({ type: 'summary', ...result })}\n`);
          await new Promise<void>((r) => f.end(() => r()));
        }
      }
      progress?.done();
      if (!result) return; // runLoad threw: the error is reported by the caller
      human.write(`${formatSummary(result)}\n`);
      if (o.json) {
        const text = `${JSON.stringify(result, null, 2)}\n`;
        if (jsonToStdout) process.stdout.write(text);
        else {
          await writeAtomic(resolve(o.json), text);
          say(`results: ${resolve(o.json)}`);
        }
      }
      for (const s of streams) say(`per-second results: ${s.file}`);
      // thresholds decide the exit code, as in CI load gates
      if (!result.pass) process.exitCode = EXIT_THRESHOLDS_FAILED;
    });
}
