import { readFile } from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';

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

const threshold = z.string().regex(/^([a-z_]+\.)?(p50|p90|p99|p999|max|availability|errors|rps)\s*(<|<=|>|>=)\s*[0-9.]+$/, 'expected e.g. "p99<200", "availability>0.99" or "join.p99<500"');

const base = {
  name: z.string().min(1),
  description: z.string().default(''),
  phases: z.array(phase).min(1).max(100),
  thresholds: z.array(threshold).default([]),
  timeoutMs: z.number().int().positive().max(60_000).default(10_000),
};

export const httpProfileSchema = z.strictObject({
  ...base,
  kind: z.literal('http'),
  request: z.enum(HTTP_REQUESTS),
  connections: z.number().int().min(1).max(1_000).default(50),
});

export const wsProfileSchema = z.strictObject({
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
});

export const loadProfileSchema = z.discriminatedUnion('kind', [httpProfileSchema, wsProfileSchema]);
export type HttpProfile = z.infer<typeof httpProfileSchema>;
export type WsProfile = z.infer<typeof wsProfileSchema>;
export type LoadProfile = z.infer<typeof loadProfileSchema>;

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

export function parseProfile(text: string, file: string): LoadProfile {
  let doc: unknown;
  try {
    doc = parseYaml(text, { logLevel: 'error' });
  } catch (err) {
    throw new ProfileError(file, [{ path: '(file)', message: `not valid YAML: ${(err as Error).message.split('\n')[0]}` }]);
  }
  const r = loadProfileSchema.safeParse(doc);
  if (!r.success) {
    throw new ProfileError(file, r.error.issues.map((i) => ({ path: i.path.map((p) => (typeof p === 'number' ? `[${p}]` : String(p))).join('.').replace(/\.\[/g, '[') || '(file)', message: i.message })));
  }
  return r.data;
}

export async function loadProfile(file: string): Promise<LoadProfile> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new ProfileError(file, [{ path: '(file)', message: `cannot read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}` }]);
  }
  return parseProfile(text, file);
}

/** Total duration of the phases, in seconds. */
export function profileSeconds(p: LoadProfile): number {
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
