import { InvalidArgumentError, type Command } from 'commander';
import { systemClock } from '../clock.js';
import { Cluster, MAX_INSTANCES } from '../cluster/index.js';
import { setArgs } from '../config.js';
import { collect, parsePort, untilSignal } from './common.js';
import { OPERATOR_TOKEN_ENV } from './serve.js';

export function parseInstances(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > MAX_INSTANCES) throw new InvalidArgumentError(`expected a whole number from 1 to ${MAX_INSTANCES}`);
  return n;
}

export function registerCluster(program: Command): void {
  program
    .command('cluster')
    .description('run Redis, haproxy and N server instances on loopback (each its own port, log and metrics) until Ctrl-C')
    .option('-n, --instances <n>', `server instances behind the proxy (1–${MAX_INSTANCES})`, parseInstances, 3)
    .option('-p, --port <n>', "the proxy's port; instances take the next ones (0 = free ports everywhere)", parsePort, 8080)
    .option('--dir <dir>', 'logs, haproxy.cfg, the Prometheus targets file and recordings', 'out/cluster')
    .option('--log-level <level>', "each instance's log level", 'info')
    .option('--no-demo', 'no demo space on the first instance')
    .option('--set <key=value>', "a server setting for every instance, as `serve --set` (repeatable)", collect, [])
    .action(async (o: { instances: number; port: number; dir: string; logLevel: string; demo: boolean; set: string[] }) => {
      const out = process.stdout;
      const cluster = new Cluster({
        instances: o.instances,
        port: o.port,
        dir: o.dir,
        logLevel: o.logLevel,
        demo: o.demo,
        serveArgs: setArgs(o.set),
        clock: systemClock(),
        // the children run this same CLI with this same Node
        stampede: [process.execPath, process.argv[1]!],
        env: process.env,
        // every instance shares one operator token: the configured one, or one made here and printed
        ...(process.env[OPERATOR_TOKEN_ENV] ? { operatorToken: process.env[OPERATOR_TOKEN_ENV] } : {}),
      });
      // a second Ctrl-C exits at once: the children (in their own process groups) must not outlive us
      const orphans = (): void => cluster.killAllNow();
      process.once('exit', orphans);
      out.write(`starting Redis, ${o.instances} instance(s) and haproxy in ${cluster.dir} …\n`);
      let started = false;
      const why = await untilSignal(
        () => cluster.stop(),
        cluster.start().then(() => {
          started = true;
          const lines = [
            `stampede cluster up: ${o.instances} instance(s) behind haproxy`,
            `  proxy     ${cluster.proxyUrl}   (API ${cluster.proxyUrl}/api/v1/spaces, page ${cluster.proxyUrl}/)`,
            ...cluster.instances.map((i) => `  ${i.id.padEnd(9)} ${i.url}   metrics ${i.url}/metrics   log ${i.logFile}`),
            `  operator token ${process.env[OPERATOR_TOKEN_ENV] ? `from ${OPERATOR_TOKEN_ENV}` : `${cluster.operatorToken}   (generated; set ${OPERATOR_TOKEN_ENV} to choose one)`}`,
            `  redis     ${cluster.redisUrl}`,
            `  haproxy   stats ${cluster.statsUrl}   metrics ${cluster.statsUrl.replace(/\/stats$/, '/metrics')}`,
            `  targets   ${cluster.targetsFile}   (Prometheus file_sd_configs, one 'instance' label each)`,
            'Ctrl-C to stop everything.',
          ];
          out.write(`${lines.join('\n')}\n`);
          return new Promise<never>(() => {});
        }),
      ).catch(async (err: unknown) => {
        await cluster.stop();
        throw err;
      });
      process.off('exit', orphans);
      if (why === 'signal' || started) out.write('stopped cleanly\n');
    });
}
