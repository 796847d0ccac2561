import type { JoinOutcome } from '../metrics/index.js';
import type { ApiErrorCode } from '../protocol/index.js';
import type { SpaceState } from '../space/index.js';
import type { JoinGate, ShedReason } from './admission.js';

/** Everything the join path decides on, read before the decision; nothing here changes state. */
export interface JoinFacts {
  spaceState: SpaceState;
  draining: boolean;
  /** Why the server sheds load right now, or null. */
  shedding: ShedReason | null;
  /** The join token bucket: a token is there, or the ms until one is. */
  token: { ok: true } | { ok: false; retryAfterMs: number };
  /** Real listeners inside plus tickets issued and not yet used. */
  listenersAndPending: number;
  maxListeners: number;
  /** The Retry-After (ms) of refusals that do not compute their own. */
  retryAfterMs: number;
}

export type JoinRefusal = { admit: false; outcome: Exclude<JoinOutcome, 'admitted' | 'failed'>; code: ApiErrorCode; message?: string; retryAfterMs?: number };

/**
 * What happens to a join before the model has its say, checked in this order: an ended space, a draining
 * server, load shedding, the rate limit, the listener cap. `takesToken` says whether the join uses up a
 * token of the bucket: every join that got past the rate limit does, admitted or not.
 */
export type JoinDecision = ({ admit: true } | JoinRefusal) & { takesToken: boolean };

export function decideJoin(f: JoinFacts): JoinDecision {
  const { retryAfterMs } = f;
  if (f.spaceState === 'ended') return { admit: false, outcome: 'rejected', code: 'SPACE_ENDED', takesToken: false };
  if (f.draining) return { admit: false, outcome: 'draining', code: 'DRAINING', retryAfterMs, takesToken: false };
  if (f.shedding) return { admit: false, outcome: 'overloaded', code: 'OVERLOADED', message: `the server is shedding load (${f.shedding.replace(/_/g, ' ')})`, retryAfterMs, takesToken: false };
  if (!f.token.ok) return { admit: false, outcome: 'rate_limited', code: 'RATE_LIMITED', retryAfterMs: Math.max(1000, f.token.retryAfterMs), takesToken: false };
  if (f.listenersAndPending >= f.maxListeners) {
    return { admit: false, outcome: 'capacity', code: 'CAPACITY', message: `the space is at its cap of ${f.maxListeners} listeners`, retryAfterMs, takesToken: true };
  }
  return { admit: true, takesToken: true };
}

/** The modelled join latency a real join waits out, capped so a real client is never held long. */
export function modelledDelayMs(gate: JoinGate, maxDelayMs: number): number {
  return Math.min(gate.latencyMs, maxDelayMs);
}

/**
 * Whether the replay model fails this join. `draw` (uniform [0,1)) is called only when the model fails some
 * joins, so a replay with an open join path draws nothing from the seeded source.
 */
export function failsUnderModel(gate: JoinGate, draw: () => number): boolean {
  return gate.availability < 1 && draw() >= gate.availability;
}
