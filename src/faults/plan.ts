import { readFile } from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import type { Clock } from '../clock.js';
import { CLOSE } from '../protocol/index.js';
import type { Fault, FaultInjector, LiveServer } from '../server/index.js';
import { ScenarioError } from '../sim/index.js';
import type { Space } from '../space/index.js';

/**
 * A fault plan for `stampede serve --faults FILE`: timed faults against a running server, for people
 * who load-test with it. Times are seconds after the server starts. A plan can crash a live space —
 * its listeners are closed with 4003 (space crashed, reconnectable), its recording stops there — and
 * reopen the conversation as a new live space under another host, as a replayed crash does; and it can
 * switch the server's fault injector (`src/server/faults.ts`) on for a while: drop or stall a space's
 * audio chunks on their way to listeners, echo them, freeze heartbeats, fail the recording disk.
 */

/** Which live space: its id, `first` (the oldest live space, e.g. the demo space) or `all` (every space, now and later). */
const which = z.string().min(1);
const windowed = {
  afterSeconds: z.number().min(0),
  /** How long the fault lasts; without it, until the server stops. */
  forSeconds: z.number().positive().optional(),
};

const crash = z.strictObject({
  kind: z.literal('crash'),
  afterSeconds: z.number().min(0),
  space: which.default('first'),
  reopen: z
    .strictObject({
      afterSeconds: z.number().min(0).default(0),
      host: z.string().min(1),
      title: z.string().min(1).optional(),
    })
    .optional(),
});
const dropChunks = z.strictObject({ kind: z.literal('dropChunks'), ...windowed, space: which.default('all'), share: z.number().gt(0).max(1).default(1) });
const stallChunks = z.strictObject({ kind: z.literal('stallChunks'), ...windowed, space: which.default('all') });
const duplicateChunks = z.strictObject({ kind: z.literal('duplicateChunks'), ...windowed, space: which.default('all'), delayChunks: z.number().int().min(0).max(100).default(5) });
const freezeHeartbeats = z.strictObject({ kind: z.literal('freezeHeartbeats'), ...windowed });
const failRecordingDisk = z.strictObject({ kind: z.literal('failRecordingDisk'), ...windowed, space: which.default('all') });

export const faultPlanSchema = z.strictObject({
  /** Seeds which chunks a partial `dropChunks` takes: the same plan drops the same chunks. */
  seed: z.number().int().min(0).default(1),
  faults: z.array(z.discriminatedUnion('kind', [crash, dropChunks, stallChunks, duplicateChunks, freezeHeartbeats, failRecordingDisk])).min(1),
});
export type FaultPlan = z.output<typeof faultPlanSchema>;
type PlannedFault = FaultPlan['faults'][number];

/** Parses and validates a fault plan; errors name the field. */
export function parseFaultPlan(text: string, file: string): FaultPlan {
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    throw new ScenarioError(file, [{ path: '(file)', message: `not valid YAML: ${(err as Error).message.split('\n')[0]}` }]);
  }
  const r = faultPlanSchema.safeParse(doc);
  if (!r.success) {
    throw new ScenarioError(
      file,
      r.error.issues.map((i) => ({ path: i.path.map((p) => (typeof p === 'number' ? `[${p}]` : String(p))).join('.').replace(/\.\[/g, '['), message: i.message })),
    );
  }
  return r.data;
}

export async function loadFaultPlan(file: string): Promise<FaultPlan> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new ScenarioError(file, [{ path: '(file)', message: `cannot read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}` }]);
  }
  return parseFaultPlan(text, file);
}

export interface FaultEvent {
  atMs: number;
  text: string;
}

/** Plays a fault plan against a server (and its fault injector) on a clock; start() once, stop() idempotent. */
export class FaultRunner {
  readonly events: FaultEvent[] = [];
  private readonly abort = new AbortController();
  private tasks: Promise<void>[] = [];
  private t0 = 0;

  constructor(
    private readonly o: { plan: FaultPlan; server: LiveServer; injector: FaultInjector | null; clock: Clock; log?: (text: string) => void },
  ) {
    if (!o.injector && o.plan.faults.some((f) => f.kind !== 'crash')) throw new Error('this plan needs the server built with a fault injector (createApp({ faults }))');
  }

  start(): void {
    this.t0 = this.o.clock.now();
    this.tasks = this.o.plan.faults.map((f) => (f.kind === 'crash' ? this.crash(f) : this.window(f)).catch((err: unknown) => this.note(`fault failed: ${(err as Error).message}`)));
  }

  private note(text: string): void {
    this.events.push({ atMs: this.o.clock.now() - this.t0, text });
    this.o.log?.(text);
  }

  private async at(seconds: number): Promise<boolean> {
    await this.o.clock.sleep(this.t0 + seconds * 1000 - this.o.clock.now(), this.abort.signal);
    return !this.abort.signal.aborted;
  }

  private pick(which: string): Space | undefined {
    const live = this.o.server.spaces.list().filter((s) => s.state === 'live');
    return which === 'first' ? live[0] : live.find((s) => s.id === which);
  }

  private async crash(f: Extract<PlannedFault, { kind: 'crash' }>): Promise<void> {
    if (!(await this.at(f.afterSeconds))) return;
    const space = this.pick(f.space);
    if (!space) return this.note(`crash: no live space '${f.space}'`);
    await this.o.server.endSpace(space, CLOSE.SPACE_CRASHED);
    this.note(`crash: space ${space.id} (${space.title}) closed its listeners with ${CLOSE.SPACE_CRASHED}`);
    if (!f.reopen || !(await this.at(f.afterSeconds + f.reopen.afterSeconds))) return;
    const { space: next } = this.o.server.createSpace({ title: f.reopen.title ?? space.title, hostName: f.reopen.host, scheduledStart: this.o.clock.now() });
    await this.o.server.startSpace(next, { syntheticHost: true });
    this.note(`reopen: space ${next.id} live under ${f.reopen.host}`);
  }

  /** A fault in force from `afterSeconds` for `forSeconds` (or until stop). */
  private async window(f: Exclude<PlannedFault, { kind: 'crash' }>): Promise<void> {
    if (!(await this.at(f.afterSeconds))) return;
    let spaceId: string | null = null;
    if ('space' in f && f.space !== 'all') {
      const space = this.pick(f.space);
      if (!space) return this.note(`${f.kind}: no live space '${f.space}'`);
      spaceId = space.id;
    }
    const fault: Fault =
      f.kind === 'dropChunks' ? { kind: 'drop', spaceId, share: f.share }
      : f.kind === 'stallChunks' ? { kind: 'stall', spaceId }
      : f.kind === 'duplicateChunks' ? { kind: 'duplicate', spaceId, delayChunks: f.delayChunks }
      : f.kind === 'freezeHeartbeats' ? { kind: 'freezeHeartbeats' }
      : { kind: 'failRecordingDisk', spaceId };
    const injector = this.o.injector!;
    const where = spaceId ? `space ${spaceId}` : 'every space';
    injector.begin(fault);
    this.note(`${f.kind}: on (${f.kind === 'freezeHeartbeats' ? 'every connection' : where})${f.forSeconds !== undefined ? ` for ${f.forSeconds} s` : ''}`);
    if (f.forSeconds === undefined) return;
    await this.at(f.afterSeconds + f.forSeconds);
    // a stop ends it too (the app ends every fault when it stops)
    if (this.abort.signal.aborted) return;
    injector.end(fault);
    this.note(`${f.kind}: off`);
  }

  async stop(): Promise<void> {
    this.abort.abort();
    await Promise.all(this.tasks);
  }
}
