import { createServer } from 'node:http';
import { existsSync } from 'node:fs';
import type { Command } from 'commander';
import { createApp } from '../app.js';
import { systemClock } from '../clock.js';
import { ONE_ADDRESS_CROWD } from '../config.js';
import { createLogger } from '../logging.js';
import { createClientMetrics, formatSummary, loadProfile, runLoad } from '../load/index.js';
import { createRng } from '../sim/index.js';
import { parsePort, parsePositiveInt, untilSignal, writeJsonFile } from './common.js';
import { ProgressLine } from './progress.js';

/** A profile by name (scenarios/load-<name>.yaml) or by path. */
export function profilePath(nameOrPath: string): string {
  if (existsSync(nameOrPath)) return nameOrPath;
  return `scenarios/load-${nameOrPath}.yaml`;
}

export function registerLoad(program: Command): void {
  program
    .command('load')
    .description('run a load profile (autocannon for HTTP, a WebSocket swarm) against a server; without --target it starts its own')
    .argument('<profile>', 'profile name (join-storm, details-poll, chunk-fetch, attack-flood, metrics-scrape, ws-listeners, ws-reconnect-storm) or a file')
    .option('--target <url>', 'server to load (loopback only); default: start one here')
    .option('--space <id>', 'space to load (default: the first live space)')
    .option('--duration <s>', 'cut the profile to at most this many seconds', parsePositiveInt)
    .option('--json <file>', 'write the results as JSON')
    .option('--metrics-port <n>', "serve the load generator's own metrics on 127.0.0.1:<n>/metrics", parsePort)
    .option('--seed <n>', 'seed for backoff jitter and reactions', parsePositiveInt, 1)
    .action(async (name: string, o: { target?: string; space?: string; duration?: number; json?: string; metricsPort?: number; seed: number }) => {
      const profile = await loadProfile(profilePath(name));
      const clock = systemClock();
      const rng = createRng(o.seed);
      const metrics = createClientMetrics();
      const out = process.stdout;
      let app: ReturnType<typeof createApp> | null = null;
      let target = o.target;
      if (!target) {
        // its own server: the load's many clients all come from this one loopback address
        app = createApp({ logger: createLogger({ level: 'warn' }), clock, random: rng.fork('server').next, server: { port: 0, ...ONE_ADDRESS_CROWD } });
        target = await app.start();
        out.write(`started a server for the test on ${target}\n`);
      }
      const metricsServer = o.metricsPort === undefined ? null : createServer((req, res) => {
        if (req.url !== '/metrics') return void res.writeHead(404).end();
        void metrics.registry.metrics().then((text) => res.writeHead(200, { 'content-type': metrics.registry.contentType }).end(text));
      });
      if (metricsServer) {
        await new Promise<void>((r) => metricsServer.listen(o.metricsPort, '127.0.0.1', r));
        out.write(`load generator metrics on http://127.0.0.1:${(metricsServer.address() as { port: number }).port}/metrics\n`);
      }
      const progress = new ProgressLine(out, 2_000);
      const abort = new AbortController();
      const run = runLoad({
        profile,
        target,
        ...(o.space ? { spaceId: o.space } : {}),
        ...(o.duration ? { durationS: o.duration } : {}),
        clock,
        random: rng.fork('load').next,
        metrics,
        signal: abort.signal,
        onProgress: (p) => progress.update(`${p.elapsedS.toFixed(0)}/${p.totalS.toFixed(0)} s  requests ${p.requests}  ok ${p.ok}${p.connected !== undefined ? `  connected ${p.connected}` : ''}`, clock.now()),
      });
      await untilSignal(async () => {
        abort.abort();
        await run.catch(() => undefined);
        await app?.stop();
        await new Promise<void>((r) => (metricsServer ? metricsServer.close(() => r()) : r()));
      }, run);
      progress.done();
      const result = await run;
      out.write(`${formatSummary(result)}\n`);
      if (o.json) out.write(`results: ${await writeJsonFile(o.json, result)}\n`);
      // thresholds decide the exit code, as in CI load gates
      if (!result.pass) process.exitCode = 2;
    });
}
