import type { IncomingMessage, OutgoingHttpHeader, OutgoingHttpHeaders } from 'node:http';
import { ServerResponse, STATUS_CODES } from 'node:http';
import { BlockList, isIP } from 'node:net';
import type { Duplex } from 'node:stream';
import { ApiError } from '../protocol/index.js';

/**
 * The server's responses. The request id rides on the response until its headers are written, and goes
 * out in the one `writeHead` call with the others: a header set earlier with `setHeader` would make
 * node:http keep a second header table and merge every header of the `writeHead` call into it.
 */
export class ApiResponse extends ServerResponse {
  /** The x-request-id the answer carries; null once written (or when the response is not the API's). */
  requestId: string | null = null;
  /**
   * A join let through the admission gate holds a claim on a token until it is decided (its token taken or
   * not) or answered otherwise: while it waits for its turn or its body, the gate counts it (http-api.ts).
   */
  claim = false;
}

type HeadersArg = OutgoingHttpHeaders | OutgoingHttpHeader[];
const writeHead = ServerResponse.prototype.writeHead as (this: ServerResponse, status: number, reason?: string | HeadersArg, headers?: HeadersArg) => ServerResponse;
// every way of writing the head (a responder's writeHead, node's implicit one on `end`) carries the request id
ApiResponse.prototype.writeHead = function (this: ApiResponse, status: number, reason?: string | HeadersArg, headers?: HeadersArg) {
  const id = this.requestId;
  if (id === null) return writeHead.call(this, status, reason, headers) as ApiResponse;
  this.requestId = null;
  const named = typeof reason === 'string';
  const h = named ? headers : reason;
  let withId: HeadersArg;
  if (h === undefined) {
    this.setHeader('x-request-id', id);
    return writeHead.call(this, status, reason, headers) as ApiResponse;
  }
  if (Array.isArray(h)) withId = ['x-request-id', id, ...(h as string[])];
  else withId = { 'x-request-id': id, ...h };
  return (named ? writeHead.call(this, status, reason, withId) : writeHead.call(this, status, withId)) as ApiResponse;
} as ApiResponse['writeHead'];

const JSON_TYPE = 'application/json; charset=utf-8';

export function sendJson(res: ServerResponse, status: number, body: unknown, headers?: Record<string, string>): void {
  const text = JSON.stringify(body);
  writeJson(res, status, text, String(Buffer.byteLength(text)), headers);
}

/** A JSON answer serialized earlier (a body kept while what it shows is unchanged). */
export function sendJsonBytes(res: ServerResponse, status: number, body: Buffer): void {
  writeJson(res, status, body, String(body.length));
}

function writeJson(res: ServerResponse, status: number, text: string | Buffer, length: string, headers?: Record<string, string>): void {
  // the common answer is one flat header list (ApiResponse's writeHead puts the request id in front)
  if (headers) res.writeHead(status, { 'content-type': JSON_TYPE, 'content-length': length, 'cache-control': 'no-store', ...headers });
  else res.writeHead(status, ['content-type', JSON_TYPE, 'content-length', length, 'cache-control', 'no-store']);
  res.end(text);
}

function errorHeaders(err: ApiError): Record<string, string> | undefined {
  if (err.extra.retryAfterMs === undefined && !err.extra.allow) return undefined;
  const h: Record<string, string> = {};
  if (err.extra.retryAfterMs !== undefined) h['retry-after'] = String(Math.max(1, Math.ceil(err.extra.retryAfterMs / 1000)));
  if (err.extra.allow) h.allow = err.extra.allow.join(', ');
  return h;
}

export function sendError(res: ServerResponse, err: ApiError): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  sendJson(res, err.status, err.body(), errorHeaders(err));
}

/** Refuses an upgrade with a plain HTTP response on the raw socket (the WebSocket never opens). */
export function rejectUpgrade(socket: Duplex, err: ApiError): void {
  const body = JSON.stringify(err.body());
  const headers = {
    'content-type': 'application/json; charset=utf-8',
    'content-length': String(Buffer.byteLength(body)),
    connection: 'close',
    ...errorHeaders(err),
  };
  const head = Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('');
  if (socket.writable) socket.end(`HTTP/1.1 ${err.status} ${STATUS_CODES[err.status] ?? ''}\r\n${head}\r\n${body}`);
  else socket.destroy();
}

/** The client went away before its request body arrived: logged at debug, answered with nothing. */
export class ClientAborted extends Error {
  constructor() {
    super('the client aborted the request');
    this.name = 'ClientAborted';
  }
}

/**
 * The request carries no body: no Transfer-Encoding and no Content-Length, or a Content-Length of 0
 * (RFC 9112 §6.3). Such a body reads as `{}` without waiting for the stream to end.
 */
export function hasNoBody(req: IncomingMessage): boolean {
  const length = req.headers['content-length'];
  return req.headers['transfer-encoding'] === undefined && (length === undefined || length === '0');
}

/**
 * Reads a JSON body of at most `limit` bytes. Empty bodies read as `{}`; anything else must be
 * application/json. Never buffers more than the limit.
 */
export async function readJson(req: IncomingMessage, limit: number): Promise<unknown> {
  const declared = Number(req.headers['content-length'] ?? NaN);
  if (Number.isFinite(declared) && declared > limit) throw new ApiError('BODY_TOO_LARGE', `the body is limited to ${limit} bytes`);
  if (hasNoBody(req)) return {};
  const body = await readBody(req, limit);
  if (body.length === 0) return {};
  const type = (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase();
  if (type !== 'application/json') throw new ApiError('UNSUPPORTED_MEDIA_TYPE');
  try {
    return JSON.parse(body.toString('utf8'), (k, v: unknown) => {
      if (k === '__proto__' || k === 'constructor' || k === 'prototype') throw new SyntaxError(`forbidden key '${k}'`);
      return v;
    });
  } catch (err) {
    throw new ApiError('BAD_JSON', `the body is not valid JSON: ${(err as Error).message.slice(0, 120)}`);
  }
}

/** Collects a request body of at most `limit` bytes with plain stream events (no async iterator per request). */
function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  if (req.complete && req.readableLength === 0) return Promise.resolve(Buffer.alloc(0));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > limit) {
        cleanup();
        req.resume(); // drain what is left without keeping it
        reject(new ApiError('BODY_TOO_LARGE', `the body is limited to ${limit} bytes`));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = (): void => {
      cleanup();
      resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
    };
    const onError = (err: Error): void => {
      cleanup();
      // a reset mid-body is the client leaving, not a fault of ours
      reject(err instanceof ClientAborted || (err as NodeJS.ErrnoException).code === 'ECONNRESET' ? new ClientAborted() : err);
    };
    const cleanup = (): void => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('aborted', onAborted);
    };
    const onAborted = (): void => onError(new ClientAborted());
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('aborted', onAborted);
  });
}

/** `::ffff:10.0.0.1` (an IPv4 peer on a dual-stack socket) is `10.0.0.1`. */
function plainAddress(a: string): string {
  return a.startsWith('::ffff:') && isIP(a.slice(7)) === 4 ? a.slice(7) : a;
}

/** The trusted proxies (addresses or CIDR blocks, e.g. `10.0.0.0/8`), compiled once per settings array. */
const compiled = new WeakMap<readonly string[], BlockList>();
function proxyList(trusted: readonly string[]): BlockList {
  let list = compiled.get(trusted);
  if (!list) {
    list = new BlockList();
    for (const t of trusted) {
      const [addr = '', bits] = t.split('/');
      const family = isIP(addr) === 6 ? 'ipv6' : 'ipv4';
      if (bits === undefined) list.addAddress(addr, family);
      else list.addSubnet(addr, Number(bits), family);
    }
    compiled.set(trusted, list);
  }
  return list;
}

function isTrusted(list: BlockList, a: string): boolean {
  const v = isIP(a);
  return v !== 0 && list.check(a, v === 6 ? 'ipv6' : 'ipv4');
}

/**
 * The client's address (reliability.md #13). X-Forwarded-For is believed only when the direct peer is a
 * configured proxy, and then the right-most hop that is not itself a trusted proxy wins: hops to its
 * left were written by the client and may be anything. From any other peer the header is ignored.
 */
export function clientAddress(req: IncomingMessage, trustedProxies: readonly string[]): string {
  const peer = plainAddress(req.socket.remoteAddress ?? 'unknown');
  if (trustedProxies.length === 0) return peer;
  const list = proxyList(trustedProxies);
  if (!isTrusted(list, peer)) return peer;
  const xff = req.headers['x-forwarded-for'];
  const raw = Array.isArray(xff) ? xff.join(',') : xff;
  if (!raw || raw.length > 1024) return peer;
  const hops = raw.split(',').map((s) => plainAddress(s.trim()));
  for (let i = hops.length - 1; i >= 0; i--) {
    const hop = hops[i]!;
    // a hop that is not an address (empty, `unknown`, garbage) ends the chain: believe nothing left of it
    if (isIP(hop) === 0) return peer;
    if (!isTrusted(list, hop)) return hop;
  }
  return peer;
}
