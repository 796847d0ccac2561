/**
 * The seam between the replay engine and a live server. The engine never imports the server:
 * `src/replay/live-port.ts` implements this port over the running server and `createReplay`
 * (`src/replay/replay.ts`) passes it in.
 */

/** The replay's phases, in the order a night goes through them (the `phase` label of `stampede_sim_phase`). */
export type SimPhase = 'pre_open' | 'open' | 'failing' | 'live' | 'ended';

/** What the model says about one simulated step (all rates per simulated second). */
export interface ReplayStep {
  /** Simulated time at the end of the step, Unix ms. */
  t: number;
  phase: SimPhase;
  /** Virtual listeners inside the space. */
  listeners: number;
  /** Requests offered to the join path: first attempts + retries + metadata + attack that got through. */
  offered: number;
  /** Successful joins. */
  admitted: number;
  /** Attack requests that reached the join path after filtering. */
  attack: number;
  /** Share of legitimate join attempts that succeed in this step, 0..1 (1 when there were none). */
  availability: number;
  latencyP50Ms: number;
  latencyP99Ms: number;
  /** Legitimate join attempts in this step (a count, not a rate), and how many of them failed. */
  attempts: number;
  failures: number;
  /** Listener-weighted share of audio lost, stalled or echoed in live rooms (only when the scenario has a timeline). */
  audioGapShare?: number;
  /** Every room on the timeline (only when the scenario has one). */
  rooms?: RoomStep[];
  /** What happened to rooms in this step (only when the scenario has a timeline). */
  roomChanges?: RoomChange[];
  /** Events that happened in this step, e.g. "space opened", "mitigation: admission cap", "host started". */
  events: string[];
}

export interface RoomStep {
  name: string;
  phase: SimPhase;
  listeners: number;
  /** Share of this room's audio a listener could not use in this step, 0..1. */
  audioGap: number;
}

/** A room opening, going on air, ending, or crashing (which ends it: "This Space has ended"). */
export interface RoomChange {
  room: string;
  /** 0 for the event's own room, then in the scenario's order. */
  index: number;
  change: 'opened' | 'started' | 'ended' | 'crashed';
  host: string;
  account: string;
}

/** Real clients' traffic since the previous call, as the live server saw it. */
export interface RealLoad {
  attempts: number;
  admitted: number;
  /** Real listeners connected now. */
  listeners: number;
}

export interface ReplayPort {
  /** The space opens (the link is posted; listeners may come in before the host starts). */
  openSpace(simMs: number): void | Promise<void>;
  /** The host starts the conversation; audio begins. */
  startSpace(simMs: number): void | Promise<void>;
  /** The conversation ends; the recording is published. */
  endSpace(simMs: number): void | Promise<void>;
  /** Called once per step, after the model has stepped: gate real joins, publish counts and metrics. */
  publish(step: ReplayStep): void;
  /** Real traffic since the last call; the model adds it to its offered load. */
  takeRealLoad(): RealLoad;
  /**
   * A room of the timeline changed (optional; only for scenarios with one). The first room's opening,
   * start and normal end still come through openSpace/startSpace/endSpace; its crash comes here.
   */
  roomChanged?(change: RoomChange, simMs: number): void | Promise<void>;
  /** After the end: is the recording downloadable and complete? */
  recordingAvailable(): Promise<boolean>;
  /** Why it is not, when the server knows (optional): e.g. another instance took the space's lease over. */
  recordingProblem?(): string | null;
}
