import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SERVER_DEFAULTS } from '../../src/config.js';
import { bearer, Bucket, ByteQuota, KeyedBuckets, LagWindows, Liveness, LoadMonitor, MessageLimiter, newToken, originAllowed, tokenMatches } from '../../src/guard/index.js';
import { Shedder } from '../../src/server/index.js';

describe('token buckets', () => {
  it('admits the burst, then the rate, from the time it is given', () => {
    const b = new Bucket({ perSecond: 10, burst: 5 }, 0);
    expect(Array.from({ length: 8 }, () => b.take(0)).filter(Boolean)).toHaveLength(5);
    expect(b.waitMs(0)).toBe(100);
    expect(b.take(100)).toBe(true);
    expect(b.take(100)).toBe(false);
    expect(b.full(10_000)).toBe(true);
    // time going backwards (a clock step) never mints tokens
    expect(b.take(5_000)).toBe(true);
  });

  it('drops a kind over its rate, and calls it abuse once the drops themselves run past theirs', () => {
    const l = new MessageLimiter({ ...SERVER_DEFAULTS.messageRates, ping: { perSecond: 1, burst: 2 }, abuse: { perSecond: 1, burst: 3 } });
    const verdicts = Array.from({ length: 7 }, () => l.check('ping', 0));
    expect(verdicts).toEqual(['ok', 'ok', 'drop', 'drop', 'drop', 'abuse', 'abuse']);
    expect(l.dropped).toBe(5);
    // other kinds have their own buckets
    expect(l.check('react', 0)).toBe('ok');
  });

  it('keeps per-address buckets bounded in number, forgetting the ones that have refilled', () => {
    const k = new KeyedBuckets({ perSecond: 1, burst: 1 }, 100);
    for (let i = 0; i < 1_000; i++) expect(k.take(`10.0.${i >> 8}.${i & 255}`, i * 10).ok).toBe(true);
    expect(k.size).toBeLessThanOrEqual(100);
    expect(k.take('a', 20_000)).toEqual({ ok: true });
    expect(k.take('a', 20_000)).toEqual({ ok: false, retryAfterMs: 1_000 });
  });
});

describe('tokens', () => {
  it('matches only the same token, whatever the lengths, and reads only well-formed bearer headers', () => {
    const t = newToken();
    expect(t).toMatch(/^[A-Za-z0-9_-]{32}$/);
    expect(tokenMatches(t, t)).toBe(true);
    fc.assert(fc.property(fc.string({ maxLength: 200 }), (s) => tokenMatches(s, t) === (s === t)));
    expect(bearer(`Bearer ${t}`)).toBe(t);
    expect(bearer(`bearer ${t}`)).toBeNull();
    expect(bearer(`Bearer ${t} x`)).toBeNull();
    expect(bearer(undefined)).toBeNull();
    expect(bearer(`Bearer ${'a'.repeat(300)}`)).toBeNull();
  });
});

describe('origin policy', () => {
  it('lets non-browser clients, same-host pages and loopback pages in, and nothing else unless configured', () => {
    expect(originAllowed(undefined, 'x:1', [])).toBe(true);
    expect(originAllowed('http://127.0.0.1:8080', '127.0.0.1:8080', [])).toBe(true);
    expect(originAllowed('http://localhost:3000', '127.0.0.1:8080', [])).toBe(true);
    expect(originAllowed('http://[::1]:3000', '127.0.0.1:8080', [])).toBe(true);
    expect(originAllowed('http://192.168.1.5:8080', '192.168.1.5:8080', [])).toBe(true);
    expect(originAllowed('https://evil.example', '127.0.0.1:8080', [])).toBe(false);
    expect(originAllowed('null', '127.0.0.1:8080', [])).toBe(false);
    expect(originAllowed('http://127.0.0.1.evil.example', '127.0.0.1:8080', [])).toBe(false);
    expect(originAllowed('https://grafana.example', 'x', ['https://grafana.example/'])).toBe(true);
    expect(originAllowed('https://any.example', 'x', ['*'])).toBe(true);
    fc.assert(fc.property(fc.string(), fc.string(), (o, h) => void originAllowed(o, h, [])));
  });
});

describe('load monitor', () => {
  it('reads a blocked event loop as lag even before its sampler gets to run, and memory beside the heap', async () => {
    const m = new LoadMonitor({ windowMs: 50 });
    m.start();
    try {
      await new Promise((r) => setTimeout(r, 120));
      const t0 = Date.now();
      while (Date.now() - t0 < 400) {
        // the loop is blocked: no timer, no histogram sample can run
      }
      // read from inside the blocked task, as a request handler would
      expect(m.eventLoopLagMs()).toBeGreaterThanOrEqual(300);
      expect(m.rssBytes()).toBeGreaterThan(m.heapUsedBytes());
      expect(m.externalBytes()).toBeGreaterThan(0);
    } finally {
      m.stop();
    }
  });
});

describe('start-up lag (a fresh serve shed its first joins on a busy machine)', () => {
  const limits = { maxLagMs: 250, maxHeapBytes: Infinity, maxRssBytes: Infinity, maxExternalBytes: Infinity };

  it('a process stalled right after start (descheduled, paused) admits its first join; the same stall after the warm-up sheds', () => {
    let t = 10_000;
    const m = new LoadMonitor({ windowMs: 500, warmupMs: 2_000, now: () => t });
    m.start();
    try {
      const shedder = new Shedder(m, limits);
      // the sampler has not run for 1 s since start: its next window is 500 ms overdue
      t += 1_000;
      expect(m.eventLoopLagMs()).toBe(0);
      expect(shedder.reason()).toBeNull();
      // the same between-samples reading once the warm-up is over counts at once, as before
      t += 2_500;
      expect(m.eventLoopLagMs()).toBe(1_000);
      expect(shedder.reason()).toBe('event_loop_lag');
    } finally {
      m.stop();
    }
    // without a warm-up (the old rule) the start-up stall shed the first join
    t = 10_000;
    const old = new LoadMonitor({ windowMs: 500, now: () => t });
    old.start();
    t += 1_000;
    expect(new Shedder(old, limits).reason()).toBe('event_loop_lag');
    old.stop();
  });

  it('two slow start-up windows do not shed; two slow windows after the warm-up do, and the gauge reports both', () => {
    const w = new LagWindows(500, 0, 2_000);
    expect(w.window(500, 400)).toBe(400);
    expect(w.window(1_000, 300)).toBe(300);
    expect(w.lagAt(1_000, true)).toBe(0);
    expect(w.lastMs).toBe(300);
    expect(w.window(1_500, 20)).toBe(20);
    expect(w.window(2_000, 300)).toBe(300);
    // the first window after the warm-up has nothing counted to compare with: one slow tick does not shed
    expect(w.window(2_500, 300)).toBe(300);
    expect(w.lagAt(2_500, true)).toBe(0);
    // a loop that stays behind does
    w.window(3_000, 320);
    expect(w.lagAt(3_000, true)).toBe(300);
    const noWarmup = new LagWindows(500, 0);
    noWarmup.window(500, 400);
    noWarmup.window(1_000, 300);
    expect(noWarmup.lagAt(1_000, true)).toBe(300);
  });
});

describe('liveness', () => {
  it('counts only a pong that echoes our last ping', () => {
    const l = new Liveness(42);
    expect(l.alive).toBe(true);
    const p1 = l.nextPing();
    expect(l.alive).toBe(false);
    l.pong(Buffer.from('unrequested'));
    l.pong(Buffer.alloc(0));
    expect(l.alive).toBe(false);
    const p2 = l.nextPing();
    l.pong(p1); // an echo of an older ping is not an answer to this one
    expect(l.alive).toBe(false);
    l.pong(Buffer.from(p2));
    expect(l.alive).toBe(true);
    expect(p2.equals(p1)).toBe(false);
  });
});

describe('byte quota', () => {
  it('takes what fits, refuses what does not, and gives back what is released', () => {
    const q = new ByteQuota(100);
    expect(q.take(60)).toBe(true);
    expect(q.take(50)).toBe(false);
    expect(q.fits(40)).toBe(true);
    expect(q.take(40)).toBe(true);
    q.release(30);
    expect(q.used).toBe(70);
  });
});
