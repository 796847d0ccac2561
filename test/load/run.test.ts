import { describe, expect, it } from 'vitest';
import { systemClock } from '../../src/clock.js';
import { steps } from '../../src/load/http.js';
import { createClientMetrics, loadProfile, runLoad } from '../../src/load/index.js';
import { createRng } from '../../src/sim/index.js';
import { api, metricValue, useApps } from '../helpers/app.js';

/** Short, bounded runs of each shipped profile against a real server on 127.0.0.1:0. */
describe('load profiles against a real server', () => {
  const startApp = useApps();
  const run = async (name: string, seconds: number, server: Parameters<typeof startApp>[0] = {}) => {
    const s = await startApp({ demoSpace: true, ...server });
    const metrics = createClientMetrics();
    const result = await runLoad({ profile: await loadProfile(`scenarios/load-${name}.yaml`), target: s.url, durationS: seconds, clock: systemClock(), random: createRng(1).next, metrics });
    return { s, result, metrics };
  };

  it('join-storm: every join is answered, and the server counts what the client saw', async () => {
    const { s, result } = await run('join-storm', 3, { joinRatePerSecond: 100, joinBurst: 20 });
    const join = result.kinds[0]!;
    expect(join.requests).toBeGreaterThan(50);
    expect(join.ok + (join.refused['429'] ?? 0)).toBe(join.requests);
    expect(join.refused['429']).toBeGreaterThan(0); // past the 100/s limiter
    // each constant-rate step is its own autocannon run, stopped at its deadline with requests in flight
    // (at most one per connection): the server may have answered a few the client never read, never fewer
    const profile = await loadProfile('scenarios/load-join-storm.yaml');
    if (profile.kind !== 'http') throw new Error('join-storm is an HTTP profile');
    let inFlight = 0;
    let t = 0;
    for (const step of steps(profile.phases)) {
      if (t >= 3) break;
      inFlight += Math.max(1, Math.min(profile.connections, Math.ceil(step.rate)));
      t += step.seconds;
    }
    const admitted = await metricValue(s.app, 'stampede_join_attempts_total', { kind: 'real', outcome: 'admitted' });
    const limited = await metricValue(s.app, 'stampede_join_attempts_total', { kind: 'real', outcome: 'rate_limited' });
    expect(admitted).toBeGreaterThanOrEqual(join.ok);
    expect(limited).toBeGreaterThanOrEqual(join.refused['429']!);
    expect(admitted + limited - join.requests).toBeLessThanOrEqual(inFlight);
  });

  it('details-poll and metrics-scrape: all answered, thresholds judged', async () => {
    const d = await run('details-poll', 2);
    expect(d.result.kinds[0]).toMatchObject({ kind: 'details', availability: 1 });
    expect(d.result.kinds[0]!.requests).toBeGreaterThan(50); // how many of the 4,000 intended get sent in 2 s depends on the machine
    expect(d.result.scenarios[0]!.thresholds.map((t) => t.threshold)).toEqual(['p99<200', 'availability>0.99']);
    const m = await run('metrics-scrape', 2);
    expect(m.result.kinds[0]!.ok).toBe(m.result.kinds[0]!.requests);
  });

  it('chunk-fetch: listeners of the audio plane get chunks of the live window', async () => {
    const { result } = await run('chunk-fetch', 2);
    expect(result.kinds[0]!.ok).toBeGreaterThan(20);
    expect(result.kinds[0]!.errors).toEqual({});
  });

  it('attack-flood: every piece of junk gets a clean 4xx and the server stays up', async () => {
    const { s, result } = await run('attack-flood', 2);
    const junk = result.kinds[0]!;
    expect(junk.requests).toBeGreaterThan(50);
    expect(junk.ok).toBe(0);
    expect(Object.keys(junk.refused).sort()).toEqual(['400', '404', '405', '413']);
    expect(junk.errors).toEqual({});
    expect((await api(s.url, 'GET', '/healthz')).status).toBe(200);
  });

  it('ws-listeners: listeners join, hear audio in order, and the client metrics show it', async () => {
    const { result, metrics } = await run('ws-listeners', 3);
    const [join, connect, audio] = result.kinds;
    expect(join!.ok).toBeGreaterThan(20); // of 300 arrivals: how many get in within 3 s depends on the machine
    // every ticket became a socket, except those whose socket was still opening when the run ended
    expect(connect!.ok).toBe(connect!.requests);
    expect(connect!.ok + result.scenarios[0]!.ws!.cutShort).toBe(join!.ok);
    // how many chunks each hears in 3 s depends on the machine (late arrivals, a busy host): 118 chunks for 194
    // listeners on a loaded 2-core run; that they hear audio, and in order, does not
    expect(audio!.requests).toBeGreaterThan(0);
    expect(result.scenarios[0]!.ws!.gaps).toBe(0);
    const text = await metrics.registry.metrics();
    expect(text).toMatch(new RegExp(`stampede_client_requests_total\\{kind="join",outcome="ok"\\} ${join!.ok}`));
    // every chunk heard is one observation of the client's audio delay
    expect(text).toMatch(new RegExp(`stampede_client_audio_delay_seconds_count ${audio!.requests}\\n`));
  });

  it('ws-reconnect-storm: a dropped swarm comes straight back', async () => {
    // arrivals over 5 s, each dropped 5 s after joining: by 12 s every drop has happened and been answered
    const { s, result } = await run('ws-reconnect-storm', 12);
    const [join] = result.kinds;
    expect(result.scenarios[0]!.ws!.closes['1006']).toBeGreaterThan(100);
    // everyone joined once, and again after the drop
    expect(join!.requests).toBeGreaterThan(1.5 * result.scenarios[0]!.ws!.peakConnected);
    // the server admitted what the client saw admitted, plus at most the joins still unanswered at the end
    const admitted = await metricValue(s.app, 'stampede_join_attempts_total', { kind: 'real', outcome: 'admitted' });
    expect(admitted - join!.ok).toBeGreaterThanOrEqual(0);
    expect(admitted - join!.ok).toBeLessThanOrEqual(result.scenarios[0]!.ws!.joinsAbandoned);
  });
});
