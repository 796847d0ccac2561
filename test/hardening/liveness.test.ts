import { describe, expect, it } from 'vitest';
import { manualClock } from '../../src/clock.js';
import { probeUnrequestedPong } from '../../src/load/probe.js';
import { createSpace, joinAndConnect, metricValue, OPERATOR_TOKEN, startSpace, useApps } from '../helpers/app.js';

/** docs/reliability.md #20: liveness means answering our ping, not sending any pong. */
describe('liveness', () => {
  const startApp = useApps();

  it('terminates a peer that sends pongs of its own but never answers our pings; a peer that answers stays', async () => {
    const clock = manualClock(Date.now());
    const s = await startApp({ heartbeatMs: 15_000 }, { clock });
    const { id, hostToken } = await createSpace(s.url);
    await startSpace(s.url, id, hostToken);
    const liar = await joinAndConnect(s.url, id, 'liar', { autoPong: false });
    const honest = await joinAndConnect(s.url, id, 'honest');
    for (let round = 0; round < 2; round++) {
      // unrequested pongs, before and after our ping
      liar.ws.pong(Buffer.from('i am alive'));
      const pinged = new Promise<Buffer>((r) => liar.ws.once('ping', r));
      const honestPinged = new Promise((r) => honest.ws.once('ping', r));
      await clock.advance(15_000);
      if (round === 1) break;
      const payload = await pinged;
      await honestPinged;
      liar.ws.pong(Buffer.from('a guess'));
      expect(payload.length).toBeGreaterThan(0);
      // a round trip, so both pongs have reached the server
      await new Promise((r) => honest.ws.once('pong', r).ping());
    }
    expect((await liar.closed).code).toBe(1006);
    expect(await metricValue(s.app, 'stampede_heartbeat_terminations_total')).toBe(1);
    expect(honest.ws.readyState).toBe(honest.ws.OPEN);
  });

  it('after a stall of several heartbeats pings once, not once per missed heartbeat back to back: a peer that answers stays', async () => {
    const clock = manualClock(Date.now());
    const s = await startApp({ heartbeatMs: 15_000 }, { clock });
    const { id, hostToken } = await createSpace(s.url);
    await startSpace(s.url, id, hostToken);
    const honest = await joinAndConnect(s.url, id, 'honest');
    let pings = 0;
    honest.ws.on('ping', () => pings++);
    // three heartbeats' time at once, as for a process that got no CPU for it: a second heartbeat straight after
    // the first would find the first ping unanswered (its pong cannot be back yet) and end the connection
    await clock.advance(45_000);
    expect(await metricValue(s.app, 'stampede_heartbeat_terminations_total')).toBe(0);
    await expect.poll(() => pings).toBe(1);
    // a round trip, so the pong has reached the server; the next heartbeat is on the schedule (60 s), and finds it
    await new Promise((r) => honest.ws.once('pong', r).ping());
    await clock.advance(14_999);
    await clock.advance(1);
    await expect.poll(() => pings).toBe(2);
    expect(await metricValue(s.app, 'stampede_heartbeat_terminations_total')).toBe(0);
    expect(honest.ws.readyState).toBe(honest.ws.OPEN);
  });

  it('the probe, on real time: a pong-only peer is cut within a few heartbeats', async () => {
    const s = await startApp({ heartbeatMs: 200 });
    const r = await probeUnrequestedPong({ base: new URL(s.url), token: OPERATOR_TOKEN }, { heartbeatWaitMs: 3_000 });
    expect(r.terminated).toBe(true);
    expect(r.pingsSeen as number).toBeGreaterThanOrEqual(1);
  });
});
