import { describe, expect, it } from 'vitest';
import { manualClock } from '../../src/clock.js';
import { TokenBucket } from '../../src/server/admission.js';
import { decideJoin, failsUnderModel, modelledDelayMs, type JoinFacts } from '../../src/server/join-admission.js';

const open: JoinFacts = {
  spaceState: 'live',
  draining: false,
  shedding: null,
  token: { ok: true },
  listenersAndPending: 0,
  maxListeners: 10,
  retryAfterMs: 2_000,
};

describe('join admission (a pure decision)', () => {
  it('admits a join to a scheduled or live space with room, a token and a calm server, and spends the token', () => {
    expect(decideJoin(open)).toEqual({ admit: true, takesToken: true });
    expect(decideJoin({ ...open, spaceState: 'scheduled', listenersAndPending: 9 })).toEqual({ admit: true, takesToken: true });
  });

  it('refuses in order: ended space, draining, shedding, rate limit, listener cap', () => {
    const everything: JoinFacts = { spaceState: 'ended', draining: true, shedding: 'memory', token: { ok: false, retryAfterMs: 5 }, listenersAndPending: 10, maxListeners: 10, retryAfterMs: 2_000 };
    expect(decideJoin(everything)).toMatchObject({ admit: false, outcome: 'rejected', code: 'SPACE_ENDED', takesToken: false });
    expect(decideJoin({ ...everything, spaceState: 'live' })).toMatchObject({ outcome: 'draining', code: 'DRAINING', retryAfterMs: 2_000, takesToken: false });
    expect(decideJoin({ ...everything, spaceState: 'live', draining: false })).toMatchObject({ outcome: 'overloaded', code: 'OVERLOADED', message: 'the server is shedding load (memory)', takesToken: false });
    expect(decideJoin({ ...everything, spaceState: 'live', draining: false, shedding: 'event_loop_lag' })).toMatchObject({ message: 'the server is shedding load (event loop lag)' });
    expect(decideJoin({ ...everything, spaceState: 'live', draining: false, shedding: null })).toMatchObject({ outcome: 'rate_limited', code: 'RATE_LIMITED', takesToken: false });
    expect(decideJoin({ ...everything, spaceState: 'live', draining: false, shedding: null, token: { ok: true } })).toMatchObject({
      outcome: 'capacity',
      code: 'CAPACITY',
      message: 'the space is at its cap of 10 listeners',
      retryAfterMs: 2_000,
      takesToken: true,
    });
  });

  it('tells a rate-limited client to come back no sooner than a second, or when the next token is due', () => {
    expect(decideJoin({ ...open, token: { ok: false, retryAfterMs: 5 } })).toMatchObject({ retryAfterMs: 1_000 });
    expect(decideJoin({ ...open, token: { ok: false, retryAfterMs: 4_500 } })).toMatchObject({ retryAfterMs: 4_500 });
  });

  it('counts unused tickets against the listener cap', () => {
    expect(decideJoin({ ...open, listenersAndPending: 10 })).toMatchObject({ admit: false, code: 'CAPACITY' });
  });

  it('fails joins as the model says, drawing from the seeded source only when the model fails some', () => {
    let draws = 0;
    const draw = (u: number) => () => (draws++, u);
    expect(failsUnderModel({ availability: 1, latencyMs: 0 }, draw(0.99))).toBe(false);
    expect(draws).toBe(0);
    expect(failsUnderModel({ availability: 0.3, latencyMs: 0 }, draw(0.29))).toBe(false);
    expect(failsUnderModel({ availability: 0.3, latencyMs: 0 }, draw(0.3))).toBe(true);
    expect(failsUnderModel({ availability: 0, latencyMs: 0 }, draw(0))).toBe(true);
    expect(draws).toBe(3);
  });

  it('delays a join by the modelled latency, capped', () => {
    expect(modelledDelayMs({ availability: 1, latencyMs: 120 }, 3_000)).toBe(120);
    expect(modelledDelayMs({ availability: 0.1, latencyMs: 9_000 }, 3_000)).toBe(3_000);
  });
});

describe('the join token bucket', () => {
  it('counts tokens claimed by queued joins: a peek passes only with a token beyond the claims, and says when one is due', async () => {
    const clock = manualClock(0);
    const bucket = new TokenBucket(clock, 10, 3);
    expect(bucket.peek(2)).toEqual({ ok: true });
    // three tokens, three claims: nothing free until one more refills (100 ms at 10/s)
    expect(bucket.peek(3)).toEqual({ ok: false, retryAfterMs: 100 });
    expect(bucket.take()).toEqual({ ok: true });
    expect(bucket.peek(2)).toEqual({ ok: false, retryAfterMs: 100 });
    await clock.advance(100);
    expect(bucket.peek(2)).toEqual({ ok: true });
  });
});
