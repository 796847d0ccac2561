/**
 * Why one file (~360 lines): the scenario file's schema (about half: every field a user can tune,
 * with its bounds) and its loading — `--set` overrides, local times resolved to instants, the order
 * checks that name the offending field. A schema split from the checks that read it would make a new
 * field a change in two files with the same paths spelt twice.
 */
import { readFile } from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { zodIssues, type Issue } from '../protocol/issues.js';

/**
 * Scenario files: `event` (when), `expect` (the sourced facts a replay is scored against) and
 * `assumptions` (everything a user tunes). Times are local clock strings ("20:42") on `event.date`
 * in `event.timeZone`, resolved to Unix ms once, at load.
 */

const clock = z.string().regex(/^([01]\d|2[0-3]):[0-5]\d(:[0-5]\d)?$/, 'expected a local time like "20:42"');
const nonNeg = z.number().min(0);
const ratio = z.number().min(0).max(1);
const perSecondFrames = z.array(z.strictObject({ at: clock, perSecond: nonNeg })).min(1);
const capacityFrames = z.array(z.strictObject({ at: clock, joinsPerSecond: nonNeg })).min(1);

const condition = z.strictObject({
  after: clock.optional(),
  failureAbove: ratio.optional(),
  availabilityAbove: ratio.optional(),
  latencyP99BelowMs: nonNeg.optional(),
  listenersAbove: nonNeg.optional(),
  mitigationApplied: z.string().min(1).optional(),
  forMinutes: nonNeg.default(0),
});

const mitigation = z.strictObject({
  name: z.string().min(1),
  at: clock.optional(),
  when: condition.optional(),
  shedding: z.boolean().default(false),
  capacityFactor: z.number().positive().default(1),
  admissionCap: nonNeg.nullable().default(null),
  attackFiltered: ratio.optional(),
  /** The mitigation is undone at this time (capacity given back, shedding switched off). */
  until: clock.optional(),
});

/**
 * Every fact may name a room (default: the event's first room, or all rooms for listener counts),
 * take a `min` and/or a `max`, and be held out: scored and reported, never used by `stampede fit`.
 */
const factBase = { name: z.string(), source: z.string().min(1), holdOut: z.boolean().optional(), room: z.string().min(1).optional() };
const bounds = { min: nonNeg.optional(), max: nonNeg.optional() };
const shareBounds = { min: ratio.optional(), max: ratio.optional() };
const window = { from: clock.optional(), to: clock.optional() };

const expectation = z.discriminatedUnion('kind', [
  z.strictObject({ ...factBase, kind: z.literal('liveAt'), between: z.tuple([clock, clock]) }),
  z.strictObject({ ...factBase, kind: z.literal('listenersAt'), at: clock, ...bounds }),
  z.strictObject({ ...factBase, kind: z.literal('peakListeners'), ...bounds, ...window }),
  z.strictObject({ ...factBase, kind: z.literal('failureShare'), from: clock, to: clock, ...shareBounds }),
  z.strictObject({ ...factBase, kind: z.literal('recordingAvailable') }),
  z.strictObject({ ...factBase, kind: z.literal('endedAt'), between: z.tuple([clock, clock]), crashed: z.boolean().optional() }),
  z.strictObject({ ...factBase, kind: z.literal('openedAt'), between: z.tuple([clock, clock]) }),
  z.strictObject({ ...factBase, kind: z.literal('audioGapShare'), ...window, ...shareBounds }),
  z.strictObject({ ...factBase, kind: z.literal('realAvailability'), ...window, ...shareBounds }),
]);

/** A further room on the timeline: the host starts again elsewhere, and part of the audience follows. */
const room = z.strictObject({
  name: z.string().min(1),
  host: z.string().min(1),
  account: z.string().min(1).optional(),
  /** Opens at a time, or some minutes after another room ends (then the reopening is an outcome). */
  opensAt: clock.optional(),
  opensAfter: z.strictObject({ roomEnds: z.string().min(1), minutes: nonNeg }).optional(),
  startAfterMinutes: nonNeg.default(0),
  endAfterMinutesLive: z.number().positive(),
  /** Share of `from`'s audience at its end who come here, starting `delayMinutes` after this room opens, spread over `spreadMinutes`. */
  migration: z
    .strictObject({ from: z.string().min(1), share: ratio, delayMinutes: nonNeg.default(0), spreadMinutes: z.number().positive().default(1) })
    .optional(),
});

/** A room falls over: `eject` of its listeners are thrown out; `ends` shows "This Space has ended". */
const crash = z.strictObject({
  room: z.string().min(1),
  at: clock.optional(),
  when: condition.optional(),
  eject: ratio.default(1),
  ends: z.boolean().default(false),
});

/** Audio-plane faults while joins may work: shares of chunks lost, stalled in fan-out, or duplicated (echo). */
const audioFault = z.strictObject({
  room: z.string().min(1).optional(),
  from: clock,
  to: clock,
  chunkLoss: ratio.default(0),
  stall: ratio.default(0),
  duplicate: ratio.default(0),
});

export const scenarioSchema = z.strictObject({
  event: z.strictObject({
    name: z.string().min(1),
    /** The first room's name, for facts and crashes that name a room. */
    room: z.string().min(1).default('main'),
    host: z.string().min(1).default('host'),
    account: z.string().min(1).default('default'),
    date: z.string().regex(/^\d{4}-\d{2}-\d{2}$/, 'expected a date like 2024-08-12'),
    timeZone: z.string().min(1),
    replayFrom: clock,
    opensAt: clock,
    scheduledStart: clock,
    replayUntil: clock,
  }),
  expect: z.array(expectation).default([]),
  assumptions: z.strictObject({
    demand: z.strictObject({
      keyframes: perSecondFrames,
      scale: z.number().positive().default(1),
      noise: ratio.default(0.05),
    }),
    capacity: z.strictObject({
      keyframes: capacityFrames,
      collapse: nonNeg.default(0.04),
      baseLatencyMs: nonNeg.default(150),
      timeoutMs: z.number().positive().default(10_000),
      requestsPerJoin: z.number().positive().default(1),
      /** With shedding on, the share of capacity the servers still serve (the rest goes on refusing the excess). */
      sheddingGoodput: ratio.default(0.85),
    }),
    clients: z.strictObject({
      retry: z.strictObject({
        policy: z.enum(['none', 'immediate', 'exponential', 'jittered']),
        baseSeconds: z.number().positive().default(2),
        capSeconds: z.number().positive().default(60),
        maxAttempts: z.number().int().min(1).max(64).default(20),
        /** Seconds after a failure over which an `immediate` retry falls, evenly: [first, last]. */
        immediateSeconds: z.tuple([z.number().int().min(1), z.number().int().min(1)]).default([1, 3]),
      }),
      giveUpProbability: ratio.default(0.02),
      sessionMinutes: z.number().positive().default(120),
    }),
    attack: z
      .strictObject({
        keyframes: perSecondFrames,
        filtered: ratio.default(0.9),
      })
      .nullable()
      .default(null),
    mitigations: z.array(mitigation).default([]),
    hostStart: z.strictObject({ when: condition }),
    hostEnd: z.strictObject({ afterMinutesLive: z.number().positive() }),
    /** The event's first room is `event`; these open later on the timeline. */
    rooms: z.array(room).default([]),
    crashes: z.array(crash).default([]),
    /** Requests per second each listener inside a room sends to the failing path (counts, heartbeats, reactions). */
    roomLoad: z.strictObject({ requestsPerListenerPerSecond: nonNeg.default(0) }).default({ requestsPerListenerPerSecond: 0 }),
    audio: z
      .strictObject({
        faults: z.array(audioFault).default([]),
        /** Share of the join path's failure share that also shows as audio gaps (a shared, overloaded backend). */
        overloadCoupling: ratio.default(0),
      })
      .default({ faults: [], overloadCoupling: 0 }),
    /** The phase is `failing` while the availability of join attempts over the last 60 s is below this. */
    failingBelow: ratio.default(0.5),
  }),
  /** Written by `stampede fit`: what was varied, in which range, and how well the result fits. */
  fitted: z
    .strictObject({
      seed: z.number().int(),
      vary: z.array(z.strictObject({ path: z.string(), lo: z.number(), hi: z.number(), value: z.number() })),
      fittedError: z.number(),
      heldOutError: z.number().nullable(),
      factsMet: z.string(),
    })
    .optional(),
});

export type ScenarioInput = z.input<typeof scenarioSchema>;
export type ScenarioFile = z.output<typeof scenarioSchema>;

export type { Issue };

export class ScenarioError extends Error {
  readonly code = 'SCENARIO_INVALID';
  constructor(
    readonly file: string,
    readonly issues: Issue[],
  ) {
    super(`${file}: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`);
    this.name = 'ScenarioError';
  }
}

/**
 * Unix ms of a local clock time on a date in an IANA time zone, without a tz library. A time that occurs
 * twice (the hour a fall-back repeats) is the first of the two; one that never occurs (the hour a
 * spring-forward skips) is read with the offset before the change, so 02:30 on the day New York skips
 * 02:00–03:00 is 03:30 EDT — as Temporal's `compatible` disambiguation and most calendars do.
 */
export function localToUtcMs(date: string, time: string, timeZone: string): number {
  const [y, mo, d] = date.split('-').map(Number) as [number, number, number];
  const [h, mi, s = 0] = time.split(':').map(Number) as [number, number, number?];
  const wall = Date.UTC(y, mo - 1, d, h, mi, s);
  const format = new Intl.DateTimeFormat('en-US', { timeZone, hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit' });
  /** The zone's offset at an instant, read back through Intl. */
  const offsetAt = (t: number): number => {
    const parts = format.formatToParts(new Date(t));
    const get = (k: string): number => Number(parts.find((p) => p.type === k)?.value);
    return Date.UTC(get('year'), get('month') - 1, get('day'), get('hour'), get('minute'), get('second')) - t;
  };
  // a zone changes its offset at most once within a day either side: the offsets a day before and after
  // are the only candidates
  const DAY = 86_400_000;
  const before = offsetAt(wall - DAY);
  const after = offsetAt(wall + DAY);
  const fits = [wall - before, wall - after].filter((t) => offsetAt(t) === wall - t).sort((a, b) => a - b);
  return fits[0] ?? wall - before;
}

/** Sets `path` (dots and [i]) in a plain object to `value`; unknown intermediate keys are an issue. */
function applyOverride(doc: Record<string, unknown>, path: string, raw: string): Issue | null {
  const keys = path.split('.').flatMap((k) => k.split(/\[(\d+)\]/).filter(Boolean));
  if (keys.length === 0 || keys.some((k) => k === '__proto__' || k === 'constructor' || k === 'prototype')) return { path, message: 'not a valid parameter path' };
  let cur: unknown = doc;
  for (let i = 0; i < keys.length - 1; i++) {
    const k = keys[i]!;
    const next = (cur as Record<string, unknown>)?.[k];
    if (next === undefined || next === null || typeof next !== 'object') {
      return { path, message: `no parameter '${keys.slice(0, i + 1).join('.')}' in this scenario` };
    }
    cur = next;
  }
  let value: unknown;
  try {
    value = parseYaml(raw, { logLevel: 'error' });
  } catch {
    value = raw;
  }
  (cur as Record<string, unknown>)[keys.at(-1)!] = value;
  return null;
}

export interface Scenario extends ScenarioFile {
  file: string;
  /** The `path=value` overrides applied at load, in order (names a run beside its file). */
  overrides: string[];
  /** Every clock string resolved to Unix ms. */
  at(clockTime: string): number;
  replayFromMs: number;
  opensAtMs: number;
  scheduledStartMs: number;
  replayUntilMs: number;
}

function orderIssues(s: ScenarioFile, at: (c: string) => number): Issue[] {
  const issues: Issue[] = [];
  const e = s.event;
  const seq: [string, string][] = [
    ['event.replayFrom', e.replayFrom],
    ['event.opensAt', e.opensAt],
    ['event.scheduledStart', e.scheduledStart],
    ['event.replayUntil', e.replayUntil],
  ];
  for (let i = 1; i < seq.length; i++) {
    if (at(seq[i]![1]) < at(seq[i - 1]![1])) issues.push({ path: seq[i]![0], message: `expected a time at or after ${seq[i - 1]![1]} (${seq[i - 1]![0]})` });
  }
  const frames: [string, { at: string }[]][] = [
    ['assumptions.demand.keyframes', s.assumptions.demand.keyframes],
    ['assumptions.capacity.keyframes', s.assumptions.capacity.keyframes],
  ];
  if (s.assumptions.attack) frames.push(['assumptions.attack.keyframes', s.assumptions.attack.keyframes]);
  for (const [path, list] of frames) {
    for (let i = 1; i < list.length; i++) {
      if (at(list[i]!.at) <= at(list[i - 1]!.at)) issues.push({ path: `${path}[${i}].at`, message: `expected a time after ${list[i - 1]!.at} (the previous keyframe)` });
    }
  }
  const [lo, hi] = s.assumptions.clients.retry.immediateSeconds;
  if (hi < lo) issues.push({ path: 'assumptions.clients.retry.immediateSeconds[1]', message: `expected at least ${lo} (the first second)` });
  s.assumptions.mitigations.forEach((m, i) => {
    if (!m.at && !m.when) issues.push({ path: `assumptions.mitigations[${i}]`, message: "needs 'at' (a time) or 'when' (a condition)" });
  });
  const rooms = [s.event.room, ...s.assumptions.rooms.map((r) => r.name)];
  const knownRoom = (name: string | undefined, path: string, before = rooms.length): void => {
    if (name !== undefined && !rooms.slice(0, before).includes(name)) issues.push({ path, message: `no room '${name}' ${before < rooms.length ? 'before this one' : 'in this scenario'} (rooms: ${rooms.slice(0, before).join(', ')})` });
  };
  rooms.forEach((r, i) => {
    if (rooms.indexOf(r) !== i) issues.push({ path: `assumptions.rooms[${i - 1}].name`, message: `room '${r}' is named twice` });
  });
  s.assumptions.rooms.forEach((r, i) => {
    const path = `assumptions.rooms[${i}]`;
    if (!r.opensAt === !r.opensAfter) issues.push({ path, message: "needs either 'opensAt' (a time) or 'opensAfter' (another room's end)" });
    knownRoom(r.opensAfter?.roomEnds, `${path}.opensAfter.roomEnds`, i + 1);
    knownRoom(r.migration?.from, `${path}.migration.from`, i + 1);
  });
  s.assumptions.crashes.forEach((c, i) => {
    if (!c.at && !c.when) issues.push({ path: `assumptions.crashes[${i}]`, message: "needs 'at' (a time) or 'when' (a condition)" });
    knownRoom(c.room, `assumptions.crashes[${i}].room`);
  });
  s.assumptions.audio.faults.forEach((f, i) => {
    if (at(f.to) <= at(f.from)) issues.push({ path: `assumptions.audio.faults[${i}].to`, message: `expected a time after ${f.from}` });
    knownRoom(f.room, `assumptions.audio.faults[${i}].room`);
  });
  s.expect.forEach((x, i) => {
    knownRoom(x.room, `expect[${i}].room`);
    if ((x.kind === 'liveAt' || x.kind === 'endedAt' || x.kind === 'openedAt') && at(x.between[1]) < at(x.between[0])) issues.push({ path: `expect[${i}].between[1]`, message: `expected a time at or after ${x.between[0]}` });
    if ('from' in x && x.from !== undefined && x.to !== undefined && at(x.to) <= at(x.from)) issues.push({ path: `expect[${i}].to`, message: `expected a time after ${x.from}` });
    if ('min' in x || 'max' in x || x.kind === 'listenersAt' || x.kind === 'peakListeners' || x.kind === 'failureShare' || x.kind === 'audioGapShare' || x.kind === 'realAvailability') {
      const b = x as { min?: number; max?: number };
      if (b.min === undefined && b.max === undefined) issues.push({ path: `expect[${i}]`, message: "needs 'min' and/or 'max'" });
      if (b.min !== undefined && b.max !== undefined && b.max < b.min) issues.push({ path: `expect[${i}].max`, message: `expected at least min (${b.min})` });
    }
  });
  return issues;
}

/** Parses, overrides (`path=value`), validates and resolves a scenario document. */
export function parseScenario(text: string, file: string, overrides: string[] = []): Scenario {
  let doc: unknown;
  try {
    doc = file.endsWith('.json') ? JSON.parse(text) : parseYaml(text, { logLevel: 'error' });
  } catch (err) {
    throw new ScenarioError(file, [{ path: '(file)', message: `not valid ${file.endsWith('.json') ? 'JSON' : 'YAML'}: ${(err as Error).message.split('\n')[0]}` }]);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new ScenarioError(file, [{ path: '(file)', message: 'expected a mapping with event, expect and assumptions' }]);
  const overrideIssues: Issue[] = [];
  for (const o of overrides) {
    const eq = o.indexOf('=');
    if (eq <= 0) {
      overrideIssues.push({ path: o, message: "--set takes path=value, e.g. assumptions.capacity.collapse=0" });
      continue;
    }
    const issue = applyOverride(doc as Record<string, unknown>, o.slice(0, eq).trim(), o.slice(eq + 1));
    if (issue) overrideIssues.push(issue);
  }
  if (overrideIssues.length) throw new ScenarioError(file, overrideIssues);
  const r = scenarioSchema.safeParse(doc);
  if (!r.success) {
    throw new ScenarioError(
      file,
      zodIssues(r.error, '(file)'),
    );
  }
  const s = r.data;
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: s.event.timeZone });
  } catch {
    throw new ScenarioError(file, [{ path: 'event.timeZone', message: `unknown time zone '${s.event.timeZone}'` }]);
  }
  const cache = new Map<string, number>();
  const at = (c: string): number => {
    let v = cache.get(c);
    if (v === undefined) cache.set(c, (v = localToUtcMs(s.event.date, c, s.event.timeZone)));
    return v;
  };
  const issues = orderIssues(s, at);
  if (issues.length) throw new ScenarioError(file, issues);
  return {
    ...s,
    file,
    overrides: [...overrides],
    at,
    replayFromMs: at(s.event.replayFrom),
    opensAtMs: at(s.event.opensAt),
    scheduledStartMs: at(s.event.scheduledStart),
    replayUntilMs: at(s.event.replayUntil),
  };
}

export async function loadScenario(file: string, overrides: string[] = []): Promise<Scenario> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new ScenarioError(file, [{ path: '(file)', message: `cannot read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}` }]);
  }
  return parseScenario(text, file, overrides);
}
