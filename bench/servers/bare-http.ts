import { createServer } from 'node:http';
import { randomBytes } from 'node:crypto';
import { redeemTicketsOnUpgrade, serveChild } from './child.js';

/**
 * The join-path baseline: bare node:http answering with the same bytes Stampede sends — a join ticket
 * and a space's details of the same shape and headers — and doing nothing else (no routing, no body
 * parsing or validation, no admission, no metrics, no logs). A ticket is redeemed the way Stampede's
 * are, by an upgrade request naming it (answered 400 here: no WebSocket follows).
 */
serveChild(async () => {
  const started = new Date().toISOString();
  const tickets = new Set<string>();
  let n = 0;
  const http = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      let text: string;
      if (req.method === 'POST') {
        const ticket = randomBytes(24).toString('base64url');
        tickets.add(ticket);
        text = JSON.stringify({ v: 1, ticket, expiresAt: new Date(Date.now() + 30_000).toISOString(), role: 'listener', wsUrl: `ws://${req.headers.host}/ws?ticket=${ticket}` });
      } else {
        const space = { id: 'bench', title: 'bench', state: 'live', scheduledStart: started, startedAt: started, endedAt: null, host: { name: 'bench' }, listeners: { real: 0, virtual: 0, total: 0 }, speakers: [], chunks: n++, simTime: null };
        text = JSON.stringify({ v: 1, space });
      }
      res.writeHead(200, { 'x-request-id': `r${n}`, 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
      res.end(text);
    });
  });
  redeemTicketsOnUpgrade(http, (ticket) => tickets.delete(ticket));
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
  return { port: (http.address() as { port: number }).port, spaceId: 'bench', stop: () => new Promise<void>((r) => http.close(() => r())) };
});
