import type { Command } from 'commander';
import { parse as parseYaml } from 'yaml';
import { createApp } from '../app.js';
import type { ServerConfigInput } from '../config.js';
import { FaultRunner, loadFaultPlan } from '../faults/index.js';
import { createLogger } from '../logging.js';
import { createRng } from '../sim/index.js';
import { collect, parsePort, untilSignal } from './common.js';

/** The environment variable `stampede serve` (and `cluster`) read the operator token from. */
export const OPERATOR_TOKEN_ENV = 'STAMPEDE_OPERATOR_TOKEN';

/** The operator token from the environment, when it is set: a secret is safer there than in argv. */
export function operatorTokenFromEnv(): { operatorToken: string } | Record<string, never> {
  const t = process.env[OPERATOR_TOKEN_ENV];
  return t ? { operatorToken: t } : {};
}

/** `--set key=value` (repeatable) onto server settings: values read as YAML scalars, `a.b` for a nested one. */
export function serverSettings(sets: string[]): ServerConfigInput {
  const out: Record<string, unknown> = {};
  for (const s of sets) {
    const eq = s.indexOf('=');
    if (eq <= 0) throw new Error(`--set takes key=value, e.g. maxListeners=500 (got '${s}')`);
    const keys = s.slice(0, eq).trim().split('.');
    if (keys.some((k) => !/^[A-Za-z][A-Za-z0-9_]*$/.test(k))) throw new Error(`--set: '${s.slice(0, eq)}' is not a setting name`);
    let value: unknown;
    try {
      value = parseYaml(s.slice(eq + 1), { logLevel: 'error' });
    } catch {
      value = s.slice(eq + 1);
    }
    let cur = out;
    for (const k of keys.slice(0, -1)) cur = (cur[k] ??= {}) as Record<string, unknown>;
    cur[keys.at(-1)!] = value;
  }
  return out as ServerConfigInput;
}

export function registerServe(program: Command): void {
  program
    .command('serve')
    .description('run the live-space server alone (HTTP API, WebSocket, /metrics), with a demo space unless --no-demo')
    .option('-p, --port <n>', 'port to listen on (0 = any free port)', parsePort, 8080)
    .option('-H, --host <addr>', 'address to bind', '127.0.0.1')
    .option('--no-demo', 'do not create the demo space with a synthetic host')
    .option('--max-listeners <n>', 'cap on concurrent real listeners per space', (v) => Number(v))
    .option('--join-rate <n>', 'join calls admitted per second (token bucket)', (v) => Number(v))
    .option('--recording-dir <dir>', 'where recordings are written (default: a temporary directory)')
    .option('--redis <url>', 'share spaces with other instances through this Redis (redis://host:port)')
    .option('--instance <id>', "this instance's id in a cluster (default: local)")
    .option('--set <key=value>', 'any server setting from docs/reliability.md, e.g. --set maxOutboundBytes=524288 (repeatable)', collect, [])
    .option('--log-level <level>', 'fatal|error|warn|info|debug|trace|silent', 'info')
    .option('--json-logs', 'JSON log lines even at a terminal')
    .option('--faults <file>', 'play a fault plan against the server (crash a space and reopen it elsewhere; drop, stall or echo audio chunks; freeze heartbeats; fail the recording disk); off unless given')
    .action(async (o: { port: number; host: string; demo: boolean; maxListeners?: number; joinRate?: number; recordingDir?: string; redis?: string; instance?: string; set: string[]; logLevel: string; jsonLogs?: boolean; faults?: string }) => {
      const plan = o.faults ? await loadFaultPlan(o.faults) : null;
      const logger = createLogger({ level: o.logLevel as 'info', pretty: !o.jsonLogs && process.stderr.isTTY });
      const app = createApp({
        logger,
        // the injector only when a plan asks for it: without one the server checks nothing per chunk
        ...(plan ? { faults: { random: createRng(plan.seed).fork('faults').next } } : {}),
        server: {
          ...operatorTokenFromEnv(),
          ...serverSettings(o.set),
          port: o.port,
          host: o.host,
          demoSpace: o.demo,
          logLevel: o.logLevel as 'info',
          ...(o.maxListeners !== undefined ? { maxListeners: o.maxListeners } : {}),
          ...(o.joinRate !== undefined ? { joinRatePerSecond: o.joinRate } : {}),
          ...(o.recordingDir ? { recordingDir: o.recordingDir } : {}),
          ...(o.redis ? { redisUrl: o.redis } : {}),
          ...(o.instance ? { instanceId: o.instance } : {}),
        },
      });
      const url = await app.start();
      const faults = plan ? new FaultRunner({ plan, server: app.server, injector: app.faults, clock: app.clock, log: (text) => process.stdout.write(`fault: ${text}\n`) }) : null;
      // listen for signals before saying we are up: a supervisor may send SIGTERM as soon as it reads this
      const stopped = untilSignal(async () => {
        await faults?.stop();
        await app.stop();
      });
      // a generated operator token is printed once, here: it is what creates spaces (docs/protocol.md)
      const operator = app.server.operatorTokenGenerated ? `${app.server.operatorToken}   (generated; set ${OPERATOR_TOKEN_ENV} to choose one)` : `from ${app.config.operatorToken === process.env[OPERATOR_TOKEN_ENV] ? OPERATOR_TOKEN_ENV : '--set operatorToken'}`;
      process.stdout.write(
        `stampede server listening on ${url}\n  API      ${url}/api/v1/spaces\n  metrics  ${url}/metrics\n  page     ${url}/\n  operator token ${operator}\n` +
          `           create a space: curl -X POST -H 'authorization: Bearer <operator token>' -H 'content-type: application/json' -d '{"title":"t","scheduledStart":"2026-01-01T00:00:00Z"}' ${url}/api/v1/spaces\nCtrl-C to stop.\n`,
      );
      if (faults) {
        faults.start();
        process.stdout.write(`  faults   ${plan!.faults.length} from ${o.faults}\n`);
      }
      await stopped;
      process.stdout.write('stopped cleanly\n');
    });
}
