/**
 * What the live dashboard draws: the replay's figures sampled over simulated time, the night's events
 * and the scenario's facts. The replay port fills it; the server serves it at
 * `/api/v1/replay/timeline?since=N`. Bounded: the oldest points go first past `maxPoints`.
 */

/** One sample; times are Unix ms of simulated time, rates per simulated second, latencies in ms. */
export interface TimelinePoint {
  t: number;
  listeners: number;
  real: number;
  availability: number;
  /** Real clients' joins that succeeded over the sample, or null when they made none. */
  realAvailability: number | null;
  offered: number;
  admitted: number;
  attack: number;
  p50: number;
  p99: number;
  /** Capture → receipt delay of audio at the real clients over the sample (ms), or null with no audio. */
  audioP50: number | null;
  audioP99: number | null;
}

/** A fact to hit, as the dashboard draws it. */
export type TimelineFact =
  | { kind: 'liveAt'; label: string; from: number; to: number }
  | { kind: 'listenersAt'; label: string; at: number; min: number }
  | { kind: 'peakListeners'; label: string; min: number; max: number }
  | { kind: 'failureShare'; label: string; from: number; to: number; min: number };

export interface TimelineMeta {
  scenario: string;
  timeZone: string;
  from: number;
  to: number;
  scheduledStart: number;
  speed: number | 'max';
  facts: TimelineFact[];
}

/** The body of `GET /api/v1/replay/timeline`. */
export interface TimelineBody {
  meta: TimelineMeta;
  points: TimelinePoint[];
  events: { t: number; text: string }[];
  next: number;
}

export class ReplayTimeline {
  private readonly points: TimelinePoint[] = [];
  private readonly events: { t: number; text: string }[] = [];
  /** Sequence number of points[0]. */
  private first = 0;

  constructor(
    readonly meta: TimelineMeta,
    private readonly maxPoints = 20_000,
  ) {}

  add(p: TimelinePoint): void {
    this.points.push(p);
    if (this.points.length > this.maxPoints) {
      this.points.shift();
      this.first++;
    }
  }

  event(t: number, text: string): void {
    if (this.events.length < 1000) this.events.push({ t, text });
  }

  /** Points from sequence number `since` on (clamped to what is kept), every event, and the next `since`. */
  since(since: number): TimelineBody {
    const from = Math.max(0, Math.min(this.points.length, since - this.first));
    return { meta: this.meta, points: this.points.slice(from), events: [...this.events], next: this.first + this.points.length };
  }
}
