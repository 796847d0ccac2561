import { createServer } from 'node:http';
import { WebSocketServer } from 'ws';
import { serveChild } from './child.js';

/** Baseline: a bare ws server broadcasting each chunk with client.send(), as ws's README shows. */
serveChild(async () => {
  const http = createServer();
  const wss = new WebSocketServer({ server: http, perMessageDeflate: false });
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
  return {
    port: (http.address() as { port: number }).port,
    broadcast: (buf) => {
      for (const c of wss.clients) if (c.readyState === 1) c.send(buf);
    },
    stop: async () => {
      for (const c of wss.clients) c.terminate();
      await new Promise<void>((r) => http.close(() => r()));
    },
  };
});
