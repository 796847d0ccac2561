import { describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { CLOSE } from '../../src/protocol/index.js';
import { api, createSpace, joinAndConnect, metricValue, startSpace, useApps } from '../helpers/app.js';

/**
 * docs/reliability.md #21 (finding 3 of the hardening probe: one listener's reaction flood, all of it
 * accepted, put the whole server into shedding). The flood's figures (other addresses' joins during a
 * 16 s flood) come from `npm run probe`; this holds the behaviour on real sockets.
 */
describe('one listener flooding messages', () => {
  const startApp = useApps();

  it('has what passes its rates dropped and counted, is closed with 1008, and the room goes on for everyone else', async () => {
    const s = await startApp();
    const { id, hostToken } = await createSpace(s.url);
    await startSpace(s.url, id, hostToken);
    const other = await joinAndConnect(s.url, id, 'other');
    const flooder = await joinAndConnect(s.url, id, 'flooder');

    const reaction = JSON.stringify({ type: 'react', emoji: '🔥' });
    for (let i = 0; i < 2_000; i++) flooder.ws.send(reaction);
    const closed = await flooder.closed;
    expect(closed).toEqual({ code: CLOSE.POLICY, reason: 'message rate' });

    // dropped before any work, by the all-text bucket or the reaction bucket, and counted: the close comes only once
    // the drops themselves passed their own burst (200)
    const dropped = (await metricValue(s.app, 'stampede_ws_messages_dropped_total', { kind: 'any' })) + (await metricValue(s.app, 'stampede_ws_messages_dropped_total', { kind: 'react' }));
    expect(dropped).toBeGreaterThanOrEqual(200);
    expect(dropped).toBeLessThan(2_000);

    // everyone else: the other listener is still in the room and its own reaction still goes out; a new join is admitted
    expect(other.ws.readyState).toBe(WebSocket.OPEN);
    other.ws.send(JSON.stringify({ type: 'react', emoji: '👏' }));
    await other.until((c) => c.texts.some((m) => m.type === 'reactions' && JSON.stringify(m).includes('👏')), 'its own reaction back');
    expect((await api(s.url, 'POST', `/api/v1/spaces/${id}/join`)).status).toBe(200);
  });
});
