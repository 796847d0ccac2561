import { connect, type Socket } from 'node:net';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import hdr from 'hdr-histogram-js';
import { answer, monoMs } from './lib/proc.js';

/**
 * The HTTP load generator, in its own process on the client CPUs: raw keep-alive HTTP/1.1 over
 * node:net, so the client spends a few µs per request and the server is what saturates.
 *
 * - closed: `connections` clients each send a request, wait for its answer and send the next; with
 *   `redeem`, each join's ticket is then redeemed the way a listener does it, by an upgrade request on
 *   a fresh connection that names the ticket (no WebSocket key, so no socket stays open).
 * - scrape: GETs one after another (the /metrics figure), each timed; before each, a pause given by the caller.
 * - open: requests leave at a fixed `rate` whatever the answers (pipelined over `connections`), and
 *   each answer's latency is measured from when its request was DUE, so queueing is not hidden. A
 *   connection the server closes is opened again, as a client would; what it had sent and not had
 *   answered is counted as dropped.
 */
interface Target {
  host: string;
  port: number;
  method: 'GET' | 'POST';
  path: string;
  body: string;
}

function requestBytes(t: Target): Buffer {
  const body = t.method === 'POST' ? t.body : '';
  const head = `${t.method} ${t.path} HTTP/1.1\r\nhost: ${t.host}:${t.port}\r\n${t.method === 'POST' ? `content-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n` : ''}\r\n`;
  return Buffer.from(head + body);
}

interface Answer {
  status: number;
  body: Buffer;
}

/** Splits a keep-alive byte stream into responses (status line, content-length, body). */
class ResponseReader {
  private pending: Buffer = Buffer.alloc(0);
  constructor(private readonly onAnswer: (a: Answer) => void) {}

  push(d: Buffer): void {
    let buf = this.pending.length ? Buffer.concat([this.pending, d]) : d;
    let o = 0;
    for (;;) {
      const end = buf.indexOf('\r\n\r\n', o);
      if (end < 0) break;
      const head = buf.toString('latin1', o, end);
      const m = /\r\ncontent-length: *(\d+)/i.exec(head);
      const len = m ? Number(m[1]) : 0;
      if (buf.length < end + 4 + len) break;
      this.onAnswer({ status: Number(head.slice(9, 12)), body: buf.subarray(end + 4, end + 4 + len) });
      o = end + 4 + len;
    }
    buf = o < buf.length ? buf.subarray(o) : Buffer.alloc(0);
    this.pending = buf.length ? Buffer.from(buf) : buf;
  }
}

function open(t: Target): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect(t.port, t.host, () => resolve(s));
    s.setNoDelay(true);
    s.once('error', reject);
  });
}

const TICKET = Buffer.from('"ticket":"');

/** Redeems a ticket: an upgrade request naming it on a fresh connection; resolves when the server answers and closes. */
function redeem(t: Target, body: Buffer): Promise<boolean> {
  const at = body.indexOf(TICKET);
  if (at < 0) return Promise.resolve(false);
  const ticket = body.toString('latin1', at + TICKET.length, body.indexOf('"', at + TICKET.length));
  return new Promise((resolve) => {
    const s = connect(t.port, t.host, () => s.write(`GET /ws?ticket=${ticket} HTTP/1.1\r\nhost: ${t.host}:${t.port}\r\nconnection: Upgrade\r\nupgrade: websocket\r\nsec-websocket-version: 13\r\n\r\n`));
    let status = 0;
    s.on('data', (d: Buffer) => (status ||= Number(d.toString('latin1', 9, 12))));
    s.on('error', () => undefined);
    s.on('close', () => resolve(status === 400));
  });
}

const latency = () => hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 120_000_000, numberOfSignificantValueDigits: 3 });

async function closed(t: Target, connections: number, durationMs: number, redeemTickets: boolean) {
  const lat = latency();
  const statuses: Record<string, number> = {};
  let done = 0;
  let redeemed = 0;
  let running = true;
  const req = requestBytes(t);
  const sockets: Socket[] = [];
  const t0 = monoMs();
  const worker = async (): Promise<void> => {
    const s = await open(t);
    sockets.push(s);
    let waiting: ((a: Answer) => void) | null = null;
    const reader = new ResponseReader((a) => waiting?.(a));
    s.on('data', (d: Buffer) => reader.push(d));
    while (running) {
      const sent = monoMs();
      const a = await new Promise<Answer>((resolve) => {
        waiting = resolve;
        s.write(req);
      });
      if (!running) break;
      lat.recordValue(Math.max(1, Math.round((monoMs() - sent) * 1000)));
      statuses[a.status] = (statuses[a.status] ?? 0) + 1;
      done++;
      if (redeemTickets && a.status === 200 && (await redeem(t, a.body))) redeemed++;
    }
  };
  const workers = Array.from({ length: connections }, worker);
  await new Promise((r) => setTimeout(r, durationMs));
  running = false;
  const secs = (monoMs() - t0) / 1000;
  for (const s of sockets) s.destroy();
  await Promise.race([Promise.allSettled(workers), new Promise((r) => setTimeout(r, 100))]);
  return { requests: done, perSec: done / secs, redeemed, statuses, p50Ms: lat.getValueAtPercentile(50) / 1000, p99Ms: lat.getValueAtPercentile(99) / 1000, seconds: secs };
}

async function openLoop(t: Target, rate: number, connections: number, durationMs: number, graceMs: number) {
  const ok = latency();
  const statuses: Record<string, number> = {};
  const req = requestBytes(t);
  let sent = 0;
  let answered = 0;
  /** Requests lost with a connection the server closed before answering them. */
  let dropped = 0;
  let reconnects = 0;
  let sending = true;
  // what happened in each slice of SLICE_MS: sent (by due time), answered 200 and refused (by answer time),
  // and the worst latency of an admitted join answered in it — where in the point a slow one went slow
  const SLICE_MS = 250;
  const slices = Array.from({ length: Math.ceil((durationMs + graceMs) / SLICE_MS) + 1 }, () => ({ sent: 0, ok: 0, refused: 0, okMaxMs: 0 }));
  let t0 = 0;
  const sliceAt = (at: number) => slices[Math.min(slices.length - 1, Math.max(0, Math.floor((at - t0) / SLICE_MS)))]!;
  // one slot per connection: its socket (null while reconnecting), the due times of what it sent and
  // is not answered yet, and what fell due while it was reconnecting (written as soon as it is back)
  interface Slot {
    socket: Socket | null;
    due: number[];
    head: number;
    waiting: number[];
  }
  const slots: Slot[] = Array.from({ length: connections }, () => ({ socket: null, due: [], head: 0, waiting: [] }));
  const attach = (slot: Slot, s: Socket): void => {
    slot.socket = s;
    slot.due = [];
    slot.head = 0;
    const reader = new ResponseReader((a) => {
      const at = slot.due[slot.head++]!;
      if (slot.head > 4096) {
        slot.due.splice(0, slot.head);
        slot.head = 0;
      }
      answered++;
      statuses[a.status] = (statuses[a.status] ?? 0) + 1;
      const now = monoMs();
      const sl = sliceAt(now);
      if (a.status === 200) {
        ok.recordValue(Math.max(1, Math.round((now - at) * 1000)));
        sl.ok++;
        if (now - at > sl.okMaxMs) sl.okMaxMs = now - at;
      } else sl.refused++;
    });
    s.on('data', (d: Buffer) => reader.push(d));
    s.on('error', () => undefined);
    // a client whose connection the server closed counts what was not answered as lost and connects again
    s.once('close', () => {
      if (slot.socket !== s) return;
      dropped += slot.due.length - slot.head;
      slot.socket = null;
      if (!sending) return;
      reconnects++;
      open(t).then(
        (n) => {
          if (!sending) return void n.destroy();
          attach(slot, n);
          const w = slot.waiting.splice(0);
          if (w.length) {
            for (const at of w) slot.due.push(at);
            n.write(w.length === 1 ? req : Buffer.concat(Array.from({ length: w.length }, () => req)));
          }
        },
        () => {
          dropped += slot.waiting.splice(0).length;
        },
      );
    });
  };
  (await Promise.all(slots.map(() => open(t)))).forEach((s, i) => attach(slots[i]!, s));
  // the generator measures itself too: its own event-loop delay, CPU, and how late it wrote what was due
  const loop = monitorEventLoopDelay({ resolution: 1 });
  loop.enable();
  const cpu0 = process.cpuUsage();
  let sendLagMaxMs = 0;
  t0 = monoMs();
  let next = 0;
  await new Promise<void>((resolve) => {
    const timer = setInterval(() => {
      const now = monoMs();
      const until = Math.min(now, t0 + durationMs);
      const owed = Math.floor(((until - t0) / 1000) * rate) - sent;
      if (owed > 0) {
        sendLagMaxMs = Math.max(sendLagMaxMs, now - (t0 + (sent / rate) * 1000));
        // due times are spread evenly over the interval: request k was due at t0 + k / rate
        const per: number[] = new Array<number>(slots.length).fill(0);
        for (let k = 0; k < owed; k++) {
          const i = next++ % slots.length;
          const slot = slots[i]!;
          const at = t0 + ((sent + k) / rate) * 1000;
          sliceAt(at).sent++;
          if (slot.socket) {
            per[i]!++;
            slot.due.push(at);
          } else slot.waiting.push(at);
        }
        per.forEach((c, i) => c && slots[i]!.socket!.write(c === 1 ? req : Buffer.concat(Array.from({ length: c }, () => req))));
        sent += owed;
      }
      if (now >= t0 + durationMs) {
        clearInterval(timer);
        resolve();
      }
    }, 1);
  });
  const sendSecs = (monoMs() - t0) / 1000;
  const graceEnd = monoMs() + graceMs;
  while (answered + dropped < sent && monoMs() < graceEnd) await new Promise((r) => setTimeout(r, 20));
  sending = false;
  for (const slot of slots) slot.socket?.destroy();
  loop.disable();
  const cpu = process.cpuUsage(cpu0);
  const good = statuses['200'] ?? 0;
  return {
    gen: { loopP99Ms: loop.percentile(99) / 1e6, loopMaxMs: loop.max / 1e6, cpuMs: (cpu.user + cpu.system) / 1000, sendLagMaxMs },
    offeredPerSec: sent / sendSecs,
    sent,
    answered,
    dropped,
    reconnects,
    unanswered: sent - answered - dropped,
    statuses,
    goodputPerSec: good / sendSecs,
    p50Ms: ok.getValueAtPercentile(50) / 1000,
    p99Ms: good ? ok.getValueAtPercentile(99) / 1000 : null,
    slices: { ms: SLICE_MS, sent: slices.map((x) => x.sent), ok: slices.map((x) => x.ok), refused: slices.map((x) => x.refused), okMaxMs: slices.map((x) => Math.round(x.okMaxMs)) },
  };
}

/** What a Stampede's /metrics says of its own /metrics answers so far: its request-duration histogram's sum (s) and count for the route. */
function ownAnswers(text: string): { sum: number; count: number } | null {
  const at = (s: 'sum' | 'count') => new RegExp(`^stampede_http_request_duration_seconds_${s}\\{[^}]*route="metrics"[^}]*\\} (\\S+)$`, 'm').exec(text);
  const [sum, count] = [at('sum'), at('count')];
  return sum && count ? { sum: Number(sum[1]), count: Number(count[1]) } : null;
}

/**
 * Scrapes of a URL one after another, the i-th after a pause of `gapsMs[i]` ms (one scrape per gap);
 * every scrape's time in ms, in order. `serverMs`: the server's own mean time per answer over the scrapes
 * of this call (its request-duration histogram, read from the first and the last body: a body counts the
 * answers before it), null for a server without it.
 */
async function scrape(url: string, gapsMs: number[]): Promise<{ ms: number[]; bytes: number; serverMs: number | null }> {
  const ms: number[] = [];
  let bytes = 0;
  let first: ReturnType<typeof ownAnswers> = null;
  let last: ReturnType<typeof ownAnswers> = null;
  const samples = gapsMs.length;
  for (let i = 0; i < samples; i++) {
    if (gapsMs[i]! > 0) await new Promise((r) => setTimeout(r, gapsMs[i]));
    const t0 = monoMs();
    const text = await (await fetch(url)).text();
    ms.push(monoMs() - t0);
    bytes = text.length;
    if (i === 0) first = ownAnswers(text);
    if (i === samples - 1) last = ownAnswers(text);
  }
  const serverMs = first && last && last.count > first.count ? ((last.sum - first.sum) / (last.count - first.count)) * 1000 : null;
  return { ms, bytes, serverMs };
}

answer({
  scrape: (m) => scrape(String(m.url), (m.gapsMs as number[]).map(Number)),
  closed: (m) => {
    const a = m as unknown as Target & { connections: number; durationMs: number; redeem: boolean };
    return closed(a, a.connections, a.durationMs, a.redeem);
  },
  open: (m) => {
    const a = m as unknown as Target & { rate: number; connections: number; durationMs: number; graceMs: number };
    return openLoop(a, a.rate, a.connections, a.durationMs, a.graceMs);
  },
});
