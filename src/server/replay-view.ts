import type { SharedFault } from '../protocol/index.js';
import { OPEN_GATE, type JoinGate } from './admission.js';
import type { TimelineBody } from './timeline.js';

/**
 * What the server may read about a replay running over it. The replay hands this in at construction;
 * nothing outside the server writes into it, and the server reads the model only through these calls.
 */
export interface ReplayView {
  /** The model's verdict on the join path right now (availability and latency a real join should feel). */
  joinGate(): JoinGate;
  /** Simulated time, ISO 8601, or null while no replay step has run. */
  simTime(): string | null;
  /** The IANA time zone the simulated night is told in (the scenario's `event.timeZone`), or null with no replay. */
  simTimeZone(): string | null;
  /** Listeners the model says are inside this space (0 for a space it does not model). */
  modelledListeners(spaceId: string): number;
  /** The body of `GET /api/v1/replay`. */
  status(): Record<string, unknown>;
  /** The scenario's audio faults in force now: a replay driving a cluster shares them with every instance. */
  audioFaults(): readonly SharedFault[];
  /** What the live dashboard draws: samples from sequence number `since` on, events and facts; null with no replay. */
  timeline(since: number): TimelineBody | null;
}

/** The view of a server with no replay: joins are never failed by a model, nobody is modelled. */
export const NO_REPLAY: ReplayView = {
  joinGate: () => OPEN_GATE,
  simTime: () => null,
  simTimeZone: () => null,
  modelledListeners: () => 0,
  status: () => ({ running: false }),
  audioFaults: () => [],
  timeline: () => null,
};
