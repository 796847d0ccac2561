/**
 * Why one file (~400 lines): nine probes, one per docs/reliability.md item (#19–#26), each a short
 * self-contained function (20–50 lines) over the same few helpers (join, watch the server's memory and
 * health while it runs, read /metrics) and one runner that names them for `stampede probe`. A file per
 * probe would be nine small files importing the same helpers; the raw WebSocket client they flood with
 * stands on its own in `raw-client.ts`.
 */
import { request, type IncomingHttpHeaders } from 'node:http';
import { performance } from 'node:perf_hooks';
import { WebSocket } from 'ws';
import { encodeAudioChunk } from '../protocol/index.js';
import { assertLoopback } from './profile.js';
import { clientFrame, floodRaw, rawConnect } from './raw-client.js';

/**
 * Probes for docs/reliability.md #19–#26: what one anonymous client can do to a server, each bounded in
 * count and time, on loopback only. They speak only HTTP and WebSocket, so they measure any build of
 * the server the same way (`stampede probe`), and the tests assert on the figures they return.
 */
export interface ProbeTarget {
  base: URL;
  /** The operator token, for the probes that need a space of their own. */
  token?: string;
}

export interface HttpReply {
  status: number;
  headers: IncomingHttpHeaders;
  body: unknown;
  text: string;
  ms: number;
  /** The socket error when there was no reply (status 0), e.g. ECONNREFUSED. */
  error?: string;
}

export interface HttpOptions {
  body?: unknown;
  headers?: Record<string, string>;
  /** Source address (any of 127.0.0.0/8 on Linux), so one probe can be several clients. */
  localAddress?: string;
  timeoutMs?: number;
}

/** One HTTP request on a fresh connection; never throws (status 0 and `error` when there is no reply). */
export function http(base: URL, method: string, path: string, o: HttpOptions = {}): Promise<HttpReply> {
  const t0 = performance.now();
  const body = o.body === undefined ? undefined : typeof o.body === 'string' ? o.body : JSON.stringify(o.body);
  const headers: Record<string, string> = { ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...o.headers };
  return new Promise((resolve) => {
    const req = request(new URL(path, base), { method, headers, agent: false, ...(o.localAddress ? { localAddress: o.localAddress } : {}), timeout: o.timeoutMs ?? 10_000 }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text += d));
      res.on('end', () => {
        let parsed: unknown = text;
        try {
          parsed = JSON.parse(text);
        } catch {
          // not JSON: the caller reads the text
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: parsed, text, ms: performance.now() - t0 });
      });
      res.on('error', (err) => resolve({ status: 0, headers: {}, body: null, text: '', ms: performance.now() - t0, error: err.message }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (err: NodeJS.ErrnoException) => resolve({ status: 0, headers: {}, body: null, text: '', ms: performance.now() - t0, error: err.code ?? err.message }));
    req.end(body);
  });
}

/** Scrapes /metrics into `name{labels}` → value. */
export async function scrape(base: URL): Promise<Map<string, number>> {
  const r = await http(base, 'GET', '/metrics');
  const out = new Map<string, number>();
  for (const line of r.text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    out.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return out;
}

const MiB = 2 ** 20;
const auth = (token: string | undefined): Record<string, string> => (token ? { authorization: `Bearer ${token}` } : {});
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const round = (n: number, d = 1): number => Math.round(n * 10 ** d) / 10 ** d;

/** Creates a space and, unless `start` is false, starts it. */
export async function probeSpace(t: ProbeTarget, start = true): Promise<{ id: string; hostToken: string }> {
  const c = await http(t.base, 'POST', '/api/v1/spaces', { body: { title: 'probe', scheduledStart: new Date().toISOString() }, headers: auth(t.token) });
  if (c.status !== 201) throw new Error(`creating a space: ${c.status} ${c.text.slice(0, 200)}`);
  const { space, hostToken } = c.body as { space: { id: string }; hostToken: string };
  if (start) {
    const s = await http(t.base, 'POST', `/api/v1/spaces/${space.id}/start`, { headers: auth(hostToken) });
    if (s.status !== 200) throw new Error(`starting a space: ${s.status} ${s.text.slice(0, 200)}`);
  }
  return { id: space.id, hostToken };
}

/** Joins a space; the WebSocket URL, or the refusal. */
export async function probeJoin(t: ProbeTarget, spaceId: string, localAddress?: string): Promise<{ wsUrl: string | null; reply: HttpReply }> {
  const reply = await http(t.base, 'POST', `/api/v1/spaces/${spaceId}/join`, localAddress ? { localAddress } : {});
  return { wsUrl: reply.status === 200 ? (reply.body as { wsUrl: string }).wsUrl : null, reply };
}

function open(wsUrl: string, opts: ConstructorParameters<typeof WebSocket>[2] = {}): Promise<WebSocket> {
  const ws = new WebSocket(wsUrl, opts);
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
    ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
  });
}

function closedWithin(ws: WebSocket, ms: number): Promise<number | null> {
  if (ws.readyState === ws.CLOSED) return Promise.resolve(-1);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(null), ms);
    ws.once('close', (code) => {
      clearTimeout(timer);
      resolve(code);
    });
  });
}

/** Samples the server while `work` runs: RSS, external memory, the lag gauge, /healthz and /readyz. */
async function watch<T>(t: ProbeTarget, work: Promise<T>, everyMs = 200): Promise<{ result: T; rssStartMiB: number; rssPeakMiB: number; externalPeakMiB: number; lagGaugeMaxMs: number; healthzMaxMs: number; readyzRefusals: number; samples: number }> {
  const first = await scrape(t.base);
  const rssStart = first.get('process_resident_memory_bytes') ?? 0;
  const s = { rssPeak: rssStart, externalPeak: first.get('nodejs_external_memory_bytes') ?? 0, lagMax: 0, healthzMax: 0, readyz: 0, n: 0 };
  let done = false;
  const sampler = (async () => {
    while (!done) {
      const [h, r, m] = await Promise.all([http(t.base, 'GET', '/healthz', { timeoutMs: 30_000 }), http(t.base, 'GET', '/readyz', { timeoutMs: 30_000 }), scrape(t.base)]);
      s.n++;
      s.healthzMax = Math.max(s.healthzMax, h.ms);
      if (r.status !== 200) s.readyz++;
      s.rssPeak = Math.max(s.rssPeak, m.get('process_resident_memory_bytes') ?? 0);
      s.externalPeak = Math.max(s.externalPeak, m.get('nodejs_external_memory_bytes') ?? 0);
      s.lagMax = Math.max(s.lagMax, (m.get('stampede_event_loop_lag_seconds') ?? 0) * 1000);
      await sleep(everyMs);
    }
  })();
  const result = await work.finally(() => (done = true));
  await sampler;
  return { result, rssStartMiB: round(rssStart / MiB), rssPeakMiB: round(s.rssPeak / MiB), externalPeakMiB: round(s.externalPeak / MiB), lagGaugeMaxMs: round(s.lagMax), healthzMaxMs: round(s.healthzMax), readyzRefusals: s.readyz, samples: s.n };
}

export interface ProbeOptions {
  /** How long a flood lasts, at most (ms). */
  floodMs?: number;
  /** The most messages a flood sends. */
  floodMax?: number;
  /** How long to wait for a dead peer to be noticed (ms): a few heartbeat intervals. */
  heartbeatWaitMs?: number;
  /** Joins the hoarding probe fires from one address. */
  hoardJoins?: number;
}

/** #19: a listener that never reads and floods `ping` messages: what the server keeps for it. */
export async function probeNonReader(t: ProbeTarget, o: ProbeOptions = {}): Promise<Record<string, number | string | null>> {
  const { id } = await probeSpace(t);
  const { wsUrl } = await probeJoin(t, id);
  const c = await rawConnect(wsUrl!);
  c.socket.pause();
  // a server that says (in /metrics) it has closed us for overflowing ends the flood early
  const overflows = async (): Promise<number> => (await scrape(t.base)).get('stampede_ws_outbound_overflows_total') ?? 0;
  const before = await overflows();
  const stop = new AbortController();
  const watcher = (async () => {
    while (!stop.signal.aborted) {
      await sleep(250);
      if ((await overflows()) > before) stop.abort();
    }
  })();
  const w = await watch(t, (async () => {
    const sent = await floodRaw(c.socket, clientFrame(1, Buffer.from(JSON.stringify({ type: 'ping', id: 1 }))), o.floodMs ?? 10_000, o.floodMax ?? 50_000_000, stop.signal);
    stop.abort();
    await watcher;
    await sleep(500);
    return sent;
  })());
  // now read everything the server kept for us, up to its close frame (or give up after 10 s)
  c.socket.resume();
  await Promise.race([c.closed, sleep(10_000)]);
  c.socket.destroy();
  return { pingsSent: w.result, pongsReceived: c.texts, closeCode: c.closeCode, rssStartMiB: w.rssStartMiB, rssPeakMiB: w.rssPeakMiB, rssGrowthMiB: round(w.rssPeakMiB - w.rssStartMiB), healthzMaxMs: w.healthzMaxMs, lagGaugeMaxMs: w.lagGaugeMaxMs, readyzRefusals: w.readyzRefusals };
}

/** #20: a peer that never answers our pings but sends pongs of its own: is it still connected later? */
export async function probeUnrequestedPong(t: ProbeTarget, o: ProbeOptions = {}): Promise<Record<string, number | string | boolean | null>> {
  const { id } = await probeSpace(t);
  const { wsUrl } = await probeJoin(t, id);
  const ws = await open(wsUrl!, { autoPong: false });
  let pings = 0;
  ws.on('ping', () => pings++);
  const wait = o.heartbeatWaitMs ?? 35_000;
  const t0 = performance.now();
  const timer = setInterval(() => ws.readyState === ws.OPEN && ws.pong(Buffer.from('unrequested')), Math.max(50, Math.min(5_000, wait / 10)));
  const code = await closedWithin(ws, wait);
  clearInterval(timer);
  const ms = performance.now() - t0;
  if (ws.readyState !== ws.CLOSED) ws.terminate();
  return { waitedMs: round(ms, 0), pingsSeen: pings, terminated: code !== null, closeCode: code };
}

/**
 * #21 and #22: one listener floods `kind` messages (react or ping) while another client, from another
 * loopback address, joins at `joinRate` a second; the other client's join availability, the flooder's
 * fate, and whether the lag signal saw what /healthz felt.
 */
export async function probeFlood(t: ProbeTarget, kind: 'react' | 'ping', o: ProbeOptions & { joinRate?: number } = {}): Promise<Record<string, number | string | null>> {
  const { id } = await probeSpace(t);
  const { wsUrl } = await probeJoin(t, id);
  const c = await rawConnect(wsUrl!);
  const floodMs = o.floodMs ?? 10_000;
  const joins = { attempts: 0, ok: 0, refused: {} as Record<string, number> };
  let stop = false;
  const joiner = (async () => {
    const every = 1000 / (o.joinRate ?? 20);
    while (!stop) {
      const t0 = performance.now();
      const { wsUrl: u, reply } = await probeJoin(t, id, '127.0.0.2');
      joins.attempts++;
      if (u) {
        joins.ok++;
        // a genuine listener uses its ticket
        try {
          (await open(u, { localAddress: '127.0.0.2' })).close();
        } catch {
          // counted as a join all the same: the join path answered
        }
      } else {
        const code = (reply.body as { error?: { code?: string } })?.error?.code ?? (reply.error ? reply.error : `HTTP_${reply.status}`);
        joins.refused[code] = (joins.refused[code] ?? 0) + 1;
      }
      await sleep(Math.max(0, every - (performance.now() - t0)));
    }
  })();
  const msg = kind === 'react' ? JSON.stringify({ type: 'react', emoji: '🔥' }) : JSON.stringify({ type: 'ping', id: 1 });
  const w = await watch(t, (async () => {
    const t0 = performance.now();
    const sent = await floodRaw(c.socket, clientFrame(1, Buffer.from(msg)), floodMs, o.floodMax ?? 50_000_000);
    // the others are measured for the whole window (and a second after), flooder closed or not
    await sleep(Math.max(0, floodMs - (performance.now() - t0)) + 1_000);
    return sent;
  })());
  stop = true;
  await joiner;
  c.socket.destroy();
  return {
    messagesSent: w.result,
    flooderCloseCode: c.closeCode,
    otherJoins: joins.attempts,
    otherJoinAvailability: joins.attempts ? round(joins.ok / joins.attempts, 4) : null,
    otherJoinRefusals: Object.entries(joins.refused).map(([k, v]) => `${k}×${v}`).join(' ') || null,
    healthzMaxMs: w.healthzMaxMs,
    lagGaugeMaxMs: w.lagGaugeMaxMs,
    readyzRefusals: w.readyzRefusals,
    rssGrowthMiB: round(w.rssPeakMiB - w.rssStartMiB),
  };
}

/** #23: one address fires joins and keeps the tickets; how long until a genuine listener gets in? */
export async function probeHoard(t: ProbeTarget, o: ProbeOptions = {}): Promise<Record<string, number | string | null>> {
  const { id } = await probeSpace(t);
  const n = o.hoardJoins ?? 12_000;
  let hoarded = 0;
  let next = 0;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: 50 }, async () => {
    while (next < n) {
      next++;
      if ((await probeJoin(t, id, '127.0.0.1')).wsUrl) hoarded++;
    }
  }));
  const hoardMs = performance.now() - t0;
  const g0 = performance.now();
  let first: number | null = null;
  let attempts = 0;
  let got = false;
  while (performance.now() - g0 < 35_000) {
    attempts++;
    const { wsUrl, reply } = await probeJoin(t, id, '127.0.0.3');
    first ??= reply.status;
    if (wsUrl) {
      got = true;
      break;
    }
    await sleep(100);
  }
  return { hoardJoins: n, ticketsHoarded: hoarded, hoardMs: round(hoardMs, 0), genuineFirstStatus: first, genuineAttempts: attempts, genuineJoinMs: got ? round(performance.now() - g0, 0) : null };
}

/** #24: what an anonymous client may create, and what a big list costs. */
export async function probeResources(t: ProbeTarget, o: { creates?: number } = {}): Promise<Record<string, number | string | null>> {
  const anon = await http(t.base, 'POST', '/api/v1/spaces', { body: { title: 'anon', scheduledStart: new Date().toISOString() } });
  let created = 0;
  let refusal: string | null = null;
  const n = o.creates ?? 3_000;
  for (let i = 0; i < n; i++) {
    const r = await http(t.base, 'POST', '/api/v1/spaces', { body: { title: `s${i}`, scheduledStart: new Date().toISOString() }, headers: auth(t.token) });
    if (r.status !== 201) {
      refusal = `${r.status} ${(r.body as { error?: { code?: string } })?.error?.code ?? ''}`.trim();
      break;
    }
    created++;
  }
  const list = await http(t.base, 'GET', '/api/v1/spaces');
  const listed = (list.body as { spaces?: unknown[] })?.spaces?.length ?? 0;
  return { anonymousCreateStatus: anon.status, createdWithToken: created, createRefusal: refusal, listStatus: list.status, listBytes: list.text.length, listMs: round(list.ms), listedOnFirstPage: listed };
}

/** #24: a live space whose host connects once and leaves: is it still live after `waitMs`? */
export async function probeHostGone(t: ProbeTarget, waitMs: number): Promise<Record<string, number | string | null>> {
  const { id, hostToken } = await probeSpace(t);
  const wsBase = t.base.origin.replace(/^http/, 'ws');
  const host = await open(`${wsBase}/ws?space=${id}`, { headers: { authorization: `Bearer ${hostToken}` } });
  host.send(encodeAudioChunk({ seq: 0, captureMs: Date.now(), frames: [new Uint8Array(100)] }));
  host.close();
  const t0 = performance.now();
  let state = 'live';
  while (performance.now() - t0 < waitMs) {
    state = ((await http(t.base, 'GET', `/api/v1/spaces/${id}`)).body as { space: { state: string } }).space.state;
    if (state === 'ended') break;
    await sleep(100);
  }
  return { stateAfterHostLeft: state, endedAfterMs: state === 'ended' ? round(performance.now() - t0, 0) : null };
}

/** #25: the documented contract for bodies and transitions. */
export async function probeContract(t: ProbeTarget): Promise<Record<string, number>> {
  const { id, hostToken } = await probeSpace(t, false);
  const h = { ...auth(hostToken) };
  const startNull = await http(t.base, 'POST', `/api/v1/spaces/${id}/start`, { body: 'null', headers: h });
  const startArray = await http(t.base, 'POST', `/api/v1/spaces/${id}/start`, { body: '[]', headers: h });
  const startWrongType = await http(t.base, 'POST', `/api/v1/spaces/${id}/start`, { body: { syntheticHost: 'yes' }, headers: h });
  const joinNull = await http(t.base, 'POST', `/api/v1/spaces/${id}/join`, { body: 'null' });
  const createArray = await http(t.base, 'POST', '/api/v1/spaces', { body: '[]', headers: auth(t.token) });
  const endScheduled = await http(t.base, 'POST', `/api/v1/spaces/${id}/end`, { headers: h });
  return { startNull: startNull.status, startArray: startArray.status, startWrongType: startWrongType.status, joinNull: joinNull.status, createArray: createArray.status, endScheduled: endScheduled.status };
}

/** #26: doors a browser page from another site could use. */
export async function probeDoors(t: ProbeTarget): Promise<Record<string, number | string | null>> {
  const { id, hostToken } = await probeSpace(t);
  const wsBase = t.base.origin.replace(/^http/, 'ws');
  const upgradeStatus = (url: string, headers: Record<string, string>): Promise<number> =>
    new Promise((resolve) => {
      const ws = new WebSocket(url, { headers });
      ws.once('open', () => {
        ws.terminate();
        resolve(101);
      });
      ws.once('unexpected-response', (_req, res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      ws.once('error', () => resolve(0));
    });
  const { wsUrl } = await probeJoin(t, id);
  const evilListener = await upgradeStatus(wsUrl!, { origin: 'https://evil.example' });
  const hostInQuery = await upgradeStatus(`${wsBase}/ws?space=${id}&hostToken=${hostToken}`, {});
  const hostInHeader = await upgradeStatus(`${wsBase}/ws?space=${id}`, { authorization: `Bearer ${hostToken}` });
  const preflight = await http(t.base, 'OPTIONS', `/api/v1/spaces/${id}/join`, { headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST' } });
  const evilJoin = await http(t.base, 'POST', `/api/v1/spaces/${id}/join`, { headers: { origin: 'https://evil.example' } });
  return {
    crossSiteListenerUpgrade: evilListener,
    hostTokenInQuery: hostInQuery,
    hostTokenInHeader: hostInHeader,
    crossSitePreflight: preflight.status,
    crossSiteJoin: evilJoin.status,
    crossSiteAllowOrigin: (evilJoin.headers['access-control-allow-origin'] as string | undefined) ?? null,
  };
}

export const PROBES = ['non-reader', 'unrequested-pong', 'react-flood', 'ping-flood', 'hoard', 'resources', 'host-gone', 'contract', 'doors'] as const;
export type ProbeName = (typeof PROBES)[number];

/** Runs one probe by name against a loopback target. */
export async function runProbe(name: ProbeName, target: ProbeTarget, o: ProbeOptions & { hostGoneWaitMs?: number } = {}): Promise<Record<string, unknown>> {
  assertLoopback(target.base.href);
  switch (name) {
    case 'non-reader':
      return probeNonReader(target, o);
    case 'unrequested-pong':
      return probeUnrequestedPong(target, o);
    case 'react-flood':
      return probeFlood(target, 'react', o);
    case 'ping-flood':
      return probeFlood(target, 'ping', o);
    case 'hoard':
      return probeHoard(target, o);
    case 'resources':
      return probeResources(target);
    case 'host-gone':
      return probeHostGone(target, o.hostGoneWaitMs ?? 150_000);
    case 'contract':
      return probeContract(target);
    case 'doors':
      return probeDoors(target);
  }
}
