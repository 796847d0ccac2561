import type { ServerMetrics } from '../metrics/index.js';
import type { Space } from '../space/index.js';

/**
 * Faults the server can feel from inside, for load tests and replays that ask for them
 * (`stampede serve --faults FILE`, a replayed scenario's audio faults): what a protocol-blind proxy
 * cannot do. Off unless asked for: the server holds `NO_FAULTS`, a null object whose fan-out route is
 * the plain fan-out itself and whose heartbeat runs the heartbeat as is, so a server without faults
 * does no per-chunk or per-listener check at all. With a `FaultInjector`, each fault is visible to
 * real clients and in `stampede_faults_*`:
 * - `drop`: a share of a space's chunks never reaches its WebSocket listeners (they see sequence gaps);
 * - `stall`: the fan-out holds every chunk, then lets them all go at once when the stall ends;
 * - `duplicate`: every chunk is sent again `delayChunks` chunks later (an echo: a sequence number repeats);
 * - `freezeHeartbeats`: no pings go out and nobody is terminated for a missed pong;
 * - `failRecordingDisk`: the recording's file write fails (the real error path: the recording stops and
 *   is not published) for the spaces live meanwhile.
 * The recording and the live window keep every chunk under drop/stall/duplicate: those faults are in the
 * fan-out, between the host's accepted audio and the listeners' sockets.
 */

/** How an accepted chunk (`buf`, sequence number `seq`) reaches a space's WebSocket listeners. */
export type FanOut<L = unknown> = (space: Space, buf: Buffer, seq: number, listeners: L) => void;

/** What the server's parts ask of the faults in force. */
export interface ServerFaults {
  /** The fan-out route to use: with no faults, `fanOut` itself. Asked once, at construction. */
  route<L>(fanOut: FanOut<L>): FanOut<L>;
  /** Runs one heartbeat round, unless heartbeats are frozen. */
  heartbeat(run: () => void): void;
  /** Is the recording disk failing for this space now (asked when its recording opens)? */
  diskFails(spaceId: string): boolean;
  /** Where to fail recordings when a disk fault begins. */
  onDiskFault(fail: (spaceId: string | null) => number): void;
  /** Counts a recording that opened while a disk fault was in force and so failed at once. */
  recordingFailed(): void;
  /**
   * Puts in force the faults another instance shares (`source`: a replay's audio faults on a cluster),
   * ending those it no longer shares; an empty list ends them all.
   */
  follow(source: string, faults: readonly Fault[]): void;
}

/** The null object: no faults, nothing checked per chunk. */
export const NO_FAULTS: ServerFaults = {
  route: (fanOut) => fanOut,
  heartbeat: (run) => run(),
  diskFails: () => false,
  onDiskFault: () => undefined,
  recordingFailed: () => undefined,
  follow: () => undefined,
};

export const FAULT_KINDS = ['drop', 'stall', 'duplicate', 'freezeHeartbeats', 'failRecordingDisk'] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

export type Fault =
  | { kind: 'drop'; spaceId: string | null; share: number }
  | { kind: 'stall'; spaceId: string | null }
  | { kind: 'duplicate'; spaceId: string | null; delayChunks: number }
  | { kind: 'freezeHeartbeats' }
  | { kind: 'failRecordingDisk'; spaceId: string | null };

/** A stall holds at most this many chunks per space (60 s at the synthetic host's cadence); older ones are dropped. */
export const MAX_STALLED_CHUNKS = 600;

/** A chunk with its sequence number, as the fan-out takes it. */
interface Chunk {
  buf: Buffer;
  seq: number;
}

interface Held {
  space: Space;
  listeners: unknown;
  chunks: Chunk[];
}

/**
 * The faults in force, switched on and off by whoever drives them (`FaultRunner`, a replay's port).
 * Every begin/end shows in `stampede_faults_active{kind}`; every chunk dropped, held or echoed, every
 * heartbeat round skipped and every recording failed counts in `stampede_faults_injected_total{kind}`.
 */
export class FaultInjector implements ServerFaults {
  private readonly active = new Set<Fault>();
  private readonly held = new Map<string, Held>();
  /** Chunks sent per space, newest last, for echoes. */
  private readonly echoes = new Map<string, Chunk[]>();
  private fanOut: FanOut | null = null;
  /** Faults put in force for other instances, by source, each under its description. */
  private readonly followed = new Map<string, Map<string, Fault>>();
  private failRecordings: (spaceId: string | null) => number = () => 0;

  constructor(
    private readonly metrics: ServerMetrics,
    /** Uniform in [0, 1): which chunks a partial drop takes (seeded by the caller for repeatable runs). */
    private readonly random: () => number,
  ) {
    for (const kind of FAULT_KINDS) metrics.faultsActive.set({ kind }, 0);
  }

  route<L>(fanOut: FanOut<L>): FanOut<L> {
    this.fanOut = fanOut as FanOut;
    return (space, buf, seq, listeners) => this.deliver(space, buf, seq, listeners);
  }

  heartbeat(run: () => void): void {
    if (this.find('freezeHeartbeats')) this.metrics.faultsInjected.inc({ kind: 'freezeHeartbeats' });
    else run();
  }

  diskFails(spaceId: string): boolean {
    return [...this.active].some((f) => f.kind === 'failRecordingDisk' && (f.spaceId === null || f.spaceId === spaceId));
  }

  onDiskFault(fail: (spaceId: string | null) => number): void {
    this.failRecordings = fail;
  }

  /** Counts a recording failed by a disk fault (also when one opens while the fault is in force). */
  recordingFailed(): void {
    this.metrics.faultsInjected.inc({ kind: 'failRecordingDisk' });
  }

  /** Puts a fault in force; returns it, to hand to `end`. */
  begin(fault: Fault): Fault {
    this.active.add(fault);
    this.metrics.faultsActive.inc({ kind: fault.kind });
    if (fault.kind === 'failRecordingDisk') this.metrics.faultsInjected.inc({ kind: 'failRecordingDisk' }, this.failRecordings(fault.spaceId));
    return fault;
  }

  /** Ends a fault; a stall that ends lets its held chunks go, in order. Ending one twice is one end. */
  end(fault: Fault): void {
    if (!this.active.delete(fault)) return;
    this.metrics.faultsActive.dec({ kind: fault.kind });
    if (fault.kind === 'stall') for (const [id, h] of [...this.held]) if (!this.stalled(id)) this.release(id, h);
  }

  follow(source: string, faults: readonly Fault[]): void {
    const was = this.followed.get(source) ?? new Map<string, Fault>();
    const now = new Map<string, Fault>();
    for (const f of faults) {
      const key = JSON.stringify([f.kind, 'spaceId' in f ? f.spaceId : null, 'share' in f ? f.share : null, 'delayChunks' in f ? f.delayChunks : null]);
      now.set(key, was.get(key) ?? this.begin({ ...f }));
    }
    for (const [key, f] of was) if (!now.has(key)) this.end(f);
    if (now.size > 0) this.followed.set(source, now);
    else this.followed.delete(source);
  }

  /** Ends every fault (the server stops, the run is over). */
  endAll(): void {
    for (const f of [...this.active]) this.end(f);
    this.followed.clear();
  }

  private find(kind: FaultKind, spaceId?: string): Fault | undefined {
    for (const f of this.active) if (f.kind === kind && (spaceId === undefined || !('spaceId' in f) || f.spaceId === null || f.spaceId === spaceId)) return f;
    return undefined;
  }

  private stalled(spaceId: string): boolean {
    return this.find('stall', spaceId) !== undefined;
  }

  private release(spaceId: string, h: Held): void {
    this.held.delete(spaceId);
    for (const c of h.chunks) this.fanOut!(h.space, c.buf, c.seq, h.listeners);
  }

  private deliver(space: Space, buf: Buffer, seq: number, listeners: unknown): void {
    const id = space.id;
    if (this.stalled(id)) {
      let h = this.held.get(id);
      if (!h) this.held.set(id, (h = { space, listeners, chunks: [] }));
      h.listeners = listeners;
      h.chunks.push({ buf, seq });
      if (h.chunks.length > MAX_STALLED_CHUNKS) h.chunks.shift();
      this.metrics.faultsInjected.inc({ kind: 'stall' });
      return;
    }
    const h = this.held.get(id);
    if (h) this.release(id, h);
    const drop = this.find('drop', id);
    if (drop && drop.kind === 'drop' && this.random() < drop.share) {
      this.metrics.faultsInjected.inc({ kind: 'drop' });
      return;
    }
    this.fanOut!(space, buf, seq, listeners);
    const dup = this.find('duplicate', id);
    if (dup && dup.kind === 'duplicate') {
      let sent = this.echoes.get(id);
      if (!sent) this.echoes.set(id, (sent = []));
      sent.push({ buf, seq });
      if (sent.length > dup.delayChunks) {
        const echo = sent.shift()!;
        this.fanOut!(space, echo.buf, echo.seq, listeners);
        this.metrics.faultsInjected.inc({ kind: 'duplicate' });
      }
    } else this.echoes.delete(id);
  }
}
