import { readFile } from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import type { Clock } from '../clock.js';
import { CLOSE } from '../protocol/index.js';
import type { LiveServer } from '../server/index.js';
import { ScenarioError } from '../sim/index.js';
import type { Space } from '../space/index.js';

/**
 * A fault plan for `stampede serve --faults FILE`: timed faults against a running server, for people
 * who load-test with it. Times are seconds after the server starts. Today the plan can crash a live
 * space — its listeners are closed with 4003 (space crashed, reconnectable), its recording stops there
 * — and reopen the conversation as a new live space under another host, as a replayed crash does.
 * Faults inside the audio plane (dropped or stalled chunks, echo), frozen heartbeats and a failing
 * recording disk need an injector inside the server and are refused with a message saying so.
 */

const IN_SERVER_ONLY = ['dropChunks', 'stallChunks', 'duplicateChunks', 'freezeHeartbeats', 'failRecordingDisk'] as const;

const crash = z.strictObject({
  kind: z.literal('crash'),
  afterSeconds: z.number().min(0),
  /** Which live space: its id, or `first` (the oldest live space, e.g. the demo space). */
  space: z.string().min(1).default('first'),
  reopen: z
    .strictObject({
      afterSeconds: z.number().min(0).default(0),
      host: z.string().min(1),
      title: z.string().min(1).optional(),
    })
    .optional(),
});

export const faultPlanSchema = z.strictObject({ faults: z.array(crash).min(1) });
export type FaultPlan = z.output<typeof faultPlanSchema>;

/** Parses and validates a fault plan; errors name the field, and kinds the server cannot yet feel say so. */
export function parseFaultPlan(text: string, file: string): FaultPlan {
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    throw new ScenarioError(file, [{ path: '(file)', message: `not valid YAML: ${(err as Error).message.split('\n')[0]}` }]);
  }
  const faults = (doc as { faults?: unknown })?.faults;
  if (Array.isArray(faults)) {
    const issues = faults.flatMap((f, i) => {
      const kind = (f as { kind?: unknown })?.kind;
      return typeof kind === 'string' && (IN_SERVER_ONLY as readonly string[]).includes(kind) ? [{ path: `faults[${i}].kind`, message: `'${kind}' needs the fault injector inside the server, which is not built yet; this plan can 'crash' (and reopen)` }] : [];
    });
    if (issues.length) throw new ScenarioError(file, issues);
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

/** Plays a fault plan against a server on a clock; start() once, stop() idempotent. */
export class FaultRunner {
  readonly events: FaultEvent[] = [];
  private readonly abort = new AbortController();
  private tasks: Promise<void>[] = [];
  private t0 = 0;

  constructor(
    private readonly o: { plan: FaultPlan; server: LiveServer; clock: Clock; log?: (text: string) => void },
  ) {}

  start(): void {
    this.t0 = this.o.clock.now();
    this.tasks = this.o.plan.faults.map((f) => this.crash(f).catch((err: unknown) => this.note(`fault failed: ${(err as Error).message}`)));
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

  private async crash(f: FaultPlan['faults'][number]): Promise<void> {
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

  async stop(): Promise<void> {
    this.abort.abort();
    await Promise.all(this.tasks);
  }
}
