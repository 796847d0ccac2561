import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { copyFile, mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { promisify } from 'node:util';
import { stringify } from 'yaml';
import { freePort } from '../../src/cluster/process.js';

const run = promisify(execFile);

/** True when `name` is on PATH. */
export async function haveCommand(name: string): Promise<boolean> {
  try {
    await run('sh', ['-c', `command -v ${name}`]);
    return true;
  } catch {
    return false;
  }
}

/** Installs Debian packages (apt-get update once, then install); for test machines only. */
export async function aptInstall(packages: string[]): Promise<void> {
  const sudo = process.getuid?.() === 0 ? [] : ['sudo', '-n'];
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const [cmd, ...pre] = sudo.length ? sudo : ['apt-get'];
  const args = (rest: string[]): string[] => (sudo.length ? [...pre, 'apt-get', ...rest] : rest);
  await run(cmd!, args(['update']), { env, maxBuffer: 64 * 1024 * 1024 });
  await run(cmd!, args(['install', '-y', '--no-install-recommends', ...packages]), { env, maxBuffer: 64 * 1024 * 1024 });
}

/** Makes sure `prometheus` and `promtool` exist, installing the Debian package `prometheus` if not. */
export async function ensurePrometheus(): Promise<void> {
  if ((await haveCommand('prometheus')) && (await haveCommand('promtool'))) return;
  await aptInstall(['prometheus']);
  if (!(await haveCommand('prometheus')) || !(await haveCommand('promtool'))) throw new Error('PROMETHEUS_MISSING: apt-get install prometheus did not provide prometheus and promtool');
}

export interface PromOptions {
  /** Prometheus `scrape_configs` entries, e.g. `[{ job_name: 'stampede', static_configs: [{ targets: ['127.0.0.1:1234'] }] }]`. */
  scrapeConfigs: Record<string, unknown>[];
  /** Rule files to load; copied into the temporary directory. */
  ruleFiles?: string[];
  /** Scrape and rule evaluation interval (default 1s). */
  interval?: string;
  /** Give up waiting for readiness after this long (default 30 s). */
  readyTimeoutMs?: number;
}

export interface QueryResult {
  status: string;
  error?: string;
  /** `value` for an instant vector; `values` (raw samples) for a range-vector selector (`metric[5m]`). */
  data?: { resultType: string; result: { metric: Record<string, string>; value?: [number, string]; values?: [number, string][] }[] };
}

export interface RunningPrometheus {
  url: string;
  dir: string;
  child: ChildProcess;
  log: () => string;
  /** Instant query at "now" through /api/v1/query. */
  query(expr: string): Promise<QueryResult>;
  /** Polls `expr` until it returns at least one sample; throws with the log after `timeoutMs`. */
  waitFor(expr: string, timeoutMs?: number): Promise<QueryResult>;
  stop(): Promise<void>;
}

/** Starts a real Prometheus on 127.0.0.1 (free port, temporary data dir) and waits until it is ready. */
export async function startPrometheus(opts: PromOptions): Promise<RunningPrometheus> {
  await ensurePrometheus();
  const dir = await mkdtemp(join(tmpdir(), 'stampede-prom-'));
  const interval = opts.interval ?? '1s';
  const rules: string[] = [];
  if (opts.ruleFiles?.length) {
    await mkdir(join(dir, 'rules'));
    for (const f of opts.ruleFiles) {
      const dest = join(dir, 'rules', basename(f));
      await copyFile(f, dest);
      rules.push(dest);
    }
  }
  const config = {
    global: { scrape_interval: interval, evaluation_interval: interval, scrape_timeout: interval },
    rule_files: rules,
    scrape_configs: opts.scrapeConfigs,
  };
  const configPath = join(dir, 'prometheus.yml');
  await writeFile(configPath, stringify(config));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const child = spawn(
    'prometheus',
    [`--config.file=${configPath}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let log = '';
  child.stdout!.on('data', (d: Buffer) => (log += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (log += d.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let stopped: Promise<void> | null = null;
  const stop = (): Promise<void> => {
    stopped ??= (async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
      await rm(dir, { recursive: true, force: true });
    })();
    return stopped;
  };
  const query = async (expr: string): Promise<QueryResult> => {
    const res = await fetch(`${url}/api/v1/query?query=${encodeURIComponent(expr)}`);
    return (await res.json()) as QueryResult;
  };
  const poll = async <T>(what: string, timeoutMs: number, attempt: () => Promise<T | null>): Promise<T> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`PROMETHEUS_EXITED: ${child.exitCode}\n${log}`);
      const got = await attempt().catch(() => null);
      if (got !== null) return got;
      if (Date.now() > deadline) throw new Error(`PROMETHEUS_TIMEOUT: ${what} after ${timeoutMs} ms\n${log}`);
      await new Promise((r) => setTimeout(r, 200)); // polling cadence, not a wait for an outcome
    }
  };
  try {
    await poll('ready', opts.readyTimeoutMs ?? 30_000, async () => ((await fetch(`${url}/-/ready`)).ok ? true : null));
  } catch (e) {
    await stop();
    throw e;
  }
  return {
    url,
    dir,
    child,
    log: () => log,
    query,
    waitFor: (expr, timeoutMs = 20_000) => poll(`data for ${expr}`, timeoutMs, async () => {
      const r = await query(expr);
      return r.status === 'success' && (r.data?.result.length ?? 0) > 0 ? r : null;
    }),
    stop,
  };
}
