import type { IncomingMessage, Server } from 'node:http';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { connectHost, createSpace, joinAndConnect, startSpace, useApps } from '../helpers/app.js';

// a real collection on demand: --expose-gc set now reaches a new context's global `gc`
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

describe('memory per connection', () => {
  const start = useApps();

  it('an open listener does not keep its upgrade request (headers, URL, head buffer) alive', async () => {
    // issue #15: a closure left on the upgraded socket kept the request and the bytes it came in, ~2 KiB per listener
    const { app, url } = await start();
    const requests: WeakRef<IncomingMessage>[] = [];
    // the node:http server is the app's own; the test only watches its upgrades, weakly
    (app.server as unknown as { http: Server }).http.prependListener('upgrade', (req: IncomingMessage) => void requests.push(new WeakRef(req)));
    const { id, hostToken } = await createSpace(url);
    await startSpace(url, id, hostToken);
    const host = await connectHost(url, id, hostToken);
    const listeners = await Promise.all([0, 1, 2].map(() => joinAndConnect(url, id)));
    await Promise.all([host, ...listeners].map((c) => c.until((m) => m.texts.some((t) => t.type === 'welcome'), 'welcome')));
    expect(requests).toHaveLength(4);
    // a WeakRef's target stays for the job that made or read it: collect in fresh turns
    for (let i = 0; i < 3; i++) {
      await new Promise((r) => setImmediate(r));
      gc();
    }
    expect(requests.filter((r) => r.deref() !== undefined)).toHaveLength(0);
    for (const c of [host, ...listeners]) expect(c.ws.readyState).toBe(WebSocket.OPEN);
  });
});
