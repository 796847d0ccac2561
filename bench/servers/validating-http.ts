import { createServer } from 'node:http';
import { randomFillSync } from 'node:crypto';
import { z } from 'zod';
import { ApiError } from '../../src/protocol/index.js';
import { ApiResponse, readJson, sendError, sendJson } from '../../src/server/http-util.js';
import { redeemTicketsOnUpgrade, serveChild } from './child.js';

/**
 * The second join baseline: bare node:http doing the join endpoint's PRODUCT work and nothing else —
 * the same body reader (size limit, media type, JSON with the forbidden-key reviver), the same schema
 * with zod, a ticket object kept per join until it is redeemed, the same JSON answer and headers,
 * written the way Stampede writes them (the request id in the one writeHead, through the same helper).
 * What Stampede spends beyond this is framework: routing, admission, metrics, request ids and logs.
 */
const joinBody = z.strictObject({ name: z.string().trim().min(1).max(64).optional() });

serveChild(async () => {
  const tickets = new Map<string, { spaceId: string; name: string; expiresAt: number }>();
  // tickets expire in issue order, as Stampede's do: a FIFO swept on every join keeps the map at 30 s of joins
  let order: string[] = [];
  let head = 0;
  const sweep = (now: number): void => {
    while (head < order.length) {
      const t = tickets.get(order[head]!);
      if (t && t.expiresAt >= now) break;
      if (t) tickets.delete(order[head]!);
      head++;
    }
    if (head > 1024 && head * 2 > order.length) {
      order = order.slice(head);
      head = 0;
    }
  };
  const entropy = Buffer.alloc(24 * 256);
  let entropyAt = entropy.length;
  let n = 0;
  const http = createServer({ ServerResponse: ApiResponse }, (req, res) => {
    res.requestId = `r${n++}`;
    readJson(req, 16 * 1024)
      .then((body) => {
        const parsed = joinBody.safeParse(body);
        if (!parsed.success) throw new ApiError('BAD_REQUEST', 'the join body may only hold a name');
        if (entropyAt === entropy.length) {
          randomFillSync(entropy);
          entropyAt = 0;
        }
        const ticket = entropy.toString('base64url', entropyAt, (entropyAt += 24));
        const now = Date.now();
        sweep(now);
        const expiresAt = now + 30_000;
        tickets.set(ticket, { spaceId: 'bench', name: parsed.data.name ?? 'listener', expiresAt });
        order.push(ticket);
        sendJson(res, 200, { v: 1, ticket, expiresAt: new Date(expiresAt).toISOString(), role: 'listener', wsUrl: `ws://${req.headers.host}/ws?ticket=${ticket}` });
      })
      .catch((err: unknown) => sendError(res, err instanceof ApiError ? err : new ApiError('INTERNAL')));
  });
  redeemTicketsOnUpgrade(http, (ticket) => tickets.delete(ticket));
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
  return { port: (http.address() as { port: number }).port, spaceId: 'bench', stop: () => new Promise<void>((r) => http.close(() => r())) };
});
