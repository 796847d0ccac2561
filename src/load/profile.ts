import { readFile } from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { substituteEnv } from './env.js';
import { parseThreshold, THRESHOLD_HELP } from './thresholds.js';

/**
 * Load profiles (scenarios/load-*.yaml): HTTP profiles driven by autocannon, WebSocket profiles driven
 * by Stampede's swarm. Phases follow Artillery's shape: a constant arrival rate, a ramp to a rate, or
 * a pause. Every profile is bounded: phases have durations and the swarm a maximum size.
 */
export const HTTP_REQUESTS = ['join', 'details', 'playlist', 'chunk', 'junk', 'metrics'] as const;
export type HttpRequestKind = (typeof HTTP_REQUESTS)[number];

const phase = z.union([
  z.strictObject({ duration: z.number().positive().max(600), arrivalRate: z.number().min(0).max(100_000) }),
  z.strictObject({ duration: z.number().positive().max(600), arrivalRate: z.number().min(0).max(100_000), rampTo: z.number().min(0).max(100_000) }),
  z.strictObject({ duration: z.number().positive().max(600), pause: z.literal(true) }),
]);
export type Phase = z.infer<typeof phase>;

const validThreshold = (t: string): boolean => {
  try {
    parseThreshold(t);
    return true;
  } catch {
    return false;
  }
};
/** A threshold: its text, or k6's object form with abortOnFail (stop the run when it fails) and a grace delay. */
export const thresholdSchema = z.union([
  z.string().refine(validThreshold, THRESHOLD_HELP),
  z.strictObject({ threshold: z.string().refine(validThreshold, THRESHOLD_HELP), abortOnFail: z.boolean().default(false), delayAbortEval: z.number().min(0).default(0) }),
]);
export type ThresholdEntry = z.infer<typeof thresholdSchema>;

export const EXECUTORS = ['arrival-rate', 'constant-vus'] as const;

const base = {
  name: z.string().min(1),
  description: z.string().default(''),
  /**
   * arrival-rate (open model: arrivals follow `phases` whether or not earlier ones were answered) or
   * constant-vus (closed model: `vus` clients, each sending again once answered, for `duration` s).
   */
  executor: z.enum(EXECUTORS).default('arrival-rate'),
  phases: z.array(phase).min(1).max(100).optional(),
  vus: z.number().int().min(1).max(20_000).optional(),
  duration: z.number().positive().max(600).optional(),
  /** Seconds after the run starts that this scenario starts (several scenarios in one file). */
  startTime: z.number().min(0).max(600).default(0),
  /** Free-form tags, carried into the JSON and NDJSON results (never into metric labels). */
  tags: z.record(z.string().regex(/^[a-zA-Z_][a-zA-Z0-9_]*$/), z.string()).default({}),
  thresholds: z.array(thresholdSchema).default([]),
  timeoutMs: z.number().int().positive().max(60_000).default(10_000),
};

const httpFields = {
  ...base,
  kind: z.literal('http'),
  request: z.enum(HTTP_REQUESTS),
  connections: z.number().int().min(1).max(1_000).default(50),
};

const wsFields = {
  ...base,
  kind: z.literal('ws'),
  /** The most listeners alive at once; arrivals past it wait. */
  maxListeners: z.number().int().min(1).max(20_000).default(2_000),
  /** How long a listener stays, in seconds (0 = until the profile ends). */
  holdSeconds: z.number().min(0).default(0),
  /** What a refused or dropped listener does: full-jitter backoff, or come straight back (a storm). */
  reconnect: z.enum(['jitter', 'storm', 'never']).default('jitter'),
  backoffBaseMs: z.number().positive().default(500),
  backoffCapMs: z.number().positive().default(20_000),
  reactionsPerMinute: z.number().min(0).max(600).default(0),
  /** Close every listener's socket after this many seconds, to cause a reconnect wave (0 = never). */
  dropAfterSeconds: z.number().min(0).default(0),
};

type Ctx = { addIssue: (i: { code: 'custom'; message: string; path: (string | number)[] }) => void };
/** arrival-rate needs phases; constant-vus needs vus and duration (and no phases). */
function checkExecutor(p: { executor: string; phases?: unknown; vus?: number; duration?: number }, ctx: Ctx): void {
  if (p.executor === 'arrival-rate') {
    if (!p.phases) ctx.addIssue({ code: 'custom', message: 'an arrival-rate scenario needs phases', path: ['phases'] });
    if (p.vus !== undefined) ctx.addIssue({ code: 'custom', message: 'vus belongs to executor: constant-vus', path: ['vus'] });
  } else {
    if (p.vus === undefined) ctx.addIssue({ code: 'custom', message: 'a constant-vus scenario needs vus', path: ['vus'] });
    if (p.duration === undefined) ctx.addIssue({ code: 'custom', message: 'a constant-vus scenario needs duration (seconds)', path: ['duration'] });
    if (p.phases) ctx.addIssue({ code: 'custom', message: 'phases belong to executor: arrival-rate; constant-vus takes vus and duration', path: ['phases'] });
  }
}

/** Every scenario ends up with phases: a closed-model scenario has one phase of its duration (no arrivals). */
function withPhases<T extends { executor: string; phases?: Phase[] | undefined; duration?: number | undefined }>(p: T): T & { phases: Phase[] } {
  return { ...p, phases: p.phases ?? [{ duration: p.duration ?? 1, arrivalRate: 0 }] };
}

export const httpProfileSchema = z.strictObject(httpFields).superRefine(checkExecutor).transform(withPhases);
export const wsProfileSchema = z.strictObject(wsFields).superRefine(checkExecutor).transform(withPhases);

export const loadProfileSchema = z.discriminatedUnion('kind', [z.strictObject(httpFields), z.strictObject(wsFields)]).superRefine(checkExecutor).transform(withPhases);
export type HttpProfile = z.infer<typeof httpProfileSchema>;
export type WsProfile = z.infer<typeof wsProfileSchema>;
export type LoadProfile = z.infer<typeof loadProfileSchema>;

/**
 * A WebSocket scenario written in code, never read from a file: a replay's real listeners (`stampede
 * replay`, in this process or spread over `--workers`). Its listeners arrive at the given times (ms after
 * it starts) instead of at its phases' rates (which it ignores), follow the conversation when a room ends
 * under them (where the run's context says it went), and stay until the run is stopped.
 */
export type CrowdProfile = WsProfile & { arrivalsMs: number[] };

export function isCrowd(p: LoadProfile): p is CrowdProfile {
  return p.kind === 'ws' && 'arrivalsMs' in p;
}

const scenarioName = z.string().regex(/^[a-z][a-z0-9_-]*$/, 'scenario names are lowercase letters, digits, - and _');

/**
 * A file of several named scenarios run at once (k6's `scenarios`): each one a profile of its own
 * (executor, start time, tags, thresholds), plus thresholds over all of them together.
 */
export const loadPlanSchema = z.strictObject({
  name: z.string().min(1),
  description: z.string().default(''),
  thresholds: z.array(thresholdSchema).default([]),
  scenarios: z
    .record(scenarioName, z.discriminatedUnion('kind', [z.strictObject({ ...httpFields, name: z.string().min(1).optional() }), z.strictObject({ ...wsFields, name: z.string().min(1).optional() })]).superRefine(checkExecutor).transform(withPhases))
    .refine((r) => Object.keys(r).length > 0, 'at least one scenario'),
});

export interface LoadPlan {
  name: string;
  description: string;
  /** Thresholds over every scenario's requests together. */
  thresholds: ThresholdEntry[];
  scenarios: LoadProfile[];
}

export class ProfileError extends Error {
  readonly code = 'PROFILE_INVALID';
  constructor(
    readonly file: string,
    readonly issues: { path: string; message: string }[],
  ) {
    super(`${file}: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`);
    this.name = 'ProfileError';
  }
}

function issuesOf(error: z.ZodError): { path: string; message: string }[] {
  return error.issues.map((i) => ({ path: i.path.map((p) => (typeof p === 'number' ? `[${p}]` : String(p))).join('.').replace(/\.\[/g, '[') || '(file)', message: i.message }));
}

function parseDoc(text: string, file: string, env: Readonly<Record<string, string | undefined>>): unknown {
  const sub = substituteEnv(text, env);
  if (sub.missing.length) throw new ProfileError(file, sub.missing.map((v) => ({ path: '(file)', message: `environment variable ${v} is not set (write \${${v}:-default} for a default)` })));
  try {
    return parseYaml(sub.text, { logLevel: 'error' });
  } catch (err) {
    throw new ProfileError(file, [{ path: '(file)', message: `not valid YAML: ${(err as Error).message.split('\n')[0]}` }]);
  }
}

/** One profile (a file with `kind:` at the top). */
export function parseProfile(text: string, file: string, env: Readonly<Record<string, string | undefined>> = {}): LoadProfile {
  const r = loadProfileSchema.safeParse(parseDoc(text, file, env));
  if (!r.success) throw new ProfileError(file, issuesOf(r.error));
  return r.data;
}

/** A load file: several named `scenarios:`, or a single profile (then one scenario and no overall thresholds of its own). */
export function parsePlan(text: string, file: string, env: Readonly<Record<string, string | undefined>> = {}): LoadPlan {
  const doc = parseDoc(text, file, env);
  if (doc && typeof doc === 'object' && 'scenarios' in doc) {
    const r = loadPlanSchema.safeParse(doc);
    if (!r.success) throw new ProfileError(file, issuesOf(r.error));
    return { name: r.data.name, description: r.data.description, thresholds: r.data.thresholds, scenarios: Object.entries(r.data.scenarios).map(([name, s]) => ({ ...s, name })) };
  }
  const r = loadProfileSchema.safeParse(doc);
  if (!r.success) throw new ProfileError(file, issuesOf(r.error));
  return { name: r.data.name, description: r.data.description, thresholds: [], scenarios: [r.data] };
}

async function readText(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    throw new ProfileError(file, [{ path: '(file)', message: `cannot read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}` }]);
  }
}

export async function loadProfile(file: string, env: Readonly<Record<string, string | undefined>> = {}): Promise<LoadProfile> {
  return parseProfile(await readText(file), file, env);
}

export async function loadPlan(file: string, env: Readonly<Record<string, string | undefined>> = {}): Promise<LoadPlan> {
  return parsePlan(await readText(file), file, env);
}

/** Total duration of the phases, in seconds. */
export function profileSeconds(p: { phases: readonly Phase[] }): number {
  return p.phases.reduce((s, x) => s + x.duration, 0);
}

/** The arrival rate at `t` seconds into the profile (0 in a pause or after the end). */
export function rateAt(phases: readonly Phase[], t: number): number {
  let start = 0;
  for (const ph of phases) {
    if (t < start + ph.duration) {
      if ('pause' in ph) return 0;
      if ('rampTo' in ph) return ph.arrivalRate + ((ph.rampTo - ph.arrivalRate) * (t - start)) / ph.duration;
      return ph.arrivalRate;
    }
    start += ph.duration;
  }
  return 0;
}

/** Cuts the phases to at most `seconds` in total (for --duration). */
export function truncatePhases(phases: readonly Phase[], seconds: number): Phase[] {
  const out: Phase[] = [];
  let left = seconds;
  for (const ph of phases) {
    if (left <= 0) break;
    out.push({ ...ph, duration: Math.min(ph.duration, left) } as Phase);
    left -= ph.duration;
  }
  return out;
}

/** Loopback only: a load generator on this machine must never aim anywhere else. */
export function assertLoopback(target: string): URL {
  let url: URL;
  try {
    url = new URL(target);
  } catch {
    throw new ProfileError('--target', [{ path: 'target', message: `not a URL: ${target}` }]);
  }
  const host = url.hostname.replace(/^\[|\]$/g, '');
  const loop = host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
  if (!loop || (url.protocol !== 'http:' && url.protocol !== 'ws:')) {
    throw new ProfileError('--target', [{ path: 'target', message: `load targets loopback only (127.0.0.0/8, ::1, localhost), not ${url.host}` }]);
  }
  return url;
}
