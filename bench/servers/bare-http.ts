import { createServer } from 'node:http';
import { randomBytes, randomFillSync } from 'node:crypto';
import { redeemTicketsOnUpgrade, serveChild } from './child.js';

/**
 * The join-path baseline: bare node:http answering with the same bytes Stampede sends — a join ticket
 * and a space's details of the same shape and headers — and doing nothing else (no routing, no body
 * parsing or validation, no admission, no metrics, no logs). Ticket entropy comes from the OS in blocks,
 * as Stampede's does, and a ticket is kept until it is redeemed or about 30 s have passed (two sets,
 * swapped every 30 s). A ticket is redeemed the way Stampede's are, by an upgrade request naming it
 * (answered 400 here: no WebSocket follows). The details body is serialized once and kept, as Stampede
 * keeps it while the space is unchanged (nothing changes a space during the join part); it is the same
 * size as Stampede's (a 16-hex-digit space id, the host on stage), so both answers are the same bytes
 * but for the times.
 */
serveChild(async () => {
  const started = new Date().toISOString();
  let tickets = new Set<string>();
  let older = new Set<string>();
  let swappedAt = Date.now();
  const entropy = Buffer.alloc(24 * 256);
  let entropyAt = entropy.length;
  const id = randomBytes(8).toString('hex');
  const space = { id, title: 'bench', state: 'live', scheduledStart: started, startedAt: started, endedAt: null, host: { name: 'bench' }, listeners: { real: 0, virtual: 0, total: 0 }, speakers: [{ id: 'c1', name: 'bench' }], chunks: 0, simTime: null, recordingReady: false, recordingLost: false };
  const details = Buffer.from(JSON.stringify({ v: 1, space }));
  let n = 0;
  const http = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      n++;
      if (req.method === 'POST') {
        if (entropyAt === entropy.length) {
          randomFillSync(entropy);
          entropyAt = 0;
        }
        const ticket = entropy.toString('base64url', entropyAt, (entropyAt += 24));
        const now = Date.now();
        if (now - swappedAt > 30_000) {
          older = tickets;
          tickets = new Set();
          swappedAt = now;
        }
        tickets.add(ticket);
        const text = JSON.stringify({ v: 1, ticket, expiresAt: new Date(now + 30_000).toISOString(), role: 'listener', wsUrl: `ws://${req.headers.host}/ws?ticket=${ticket}` });
        res.writeHead(200, { 'x-request-id': `r${n}`, 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
        res.end(text);
      } else {
        res.writeHead(200, { 'x-request-id': `r${n}`, 'content-type': 'application/json; charset=utf-8', 'content-length': details.length, 'cache-control': 'no-store' });
        res.end(details);
      }
    });
  });
  redeemTicketsOnUpgrade(http, (ticket) => tickets.delete(ticket) || older.delete(ticket));
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
  return { port: (http.address() as { port: number }).port, spaceId: id, stop: () => new Promise<void>((r) => http.close(() => r())) };
});
