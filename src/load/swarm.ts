/**
 * Why one file (~300 lines): one listener's life is one loop — arrive, take a place, join, listen,
 * react, reconnect with backoff or give up — and the swarm runs many of them under one limit and one
 * stop. Its pieces share the swarm's counters and abort signal; the arrival times and the backoff are
 * already pure functions at the top.
 */
import { setMaxListeners } from 'node:events';
import { WebSocket } from 'ws';
import type { Clock } from '../clock.js';
import { mayReconnect, peekAudioHeader } from '../protocol/index.js';
import { rateAt, type Phase } from './profile.js';
import { KindStats, type ClientMetrics } from './results.js';

export interface SwarmOptions {
  /** Server base URL (loopback) and the space to join. */
  base: URL;
  spaceId: string;
  /** When each listener arrives, in ms after start() (an open model: arrivals do not wait for each other). */
  arrivalsMs: number[];
  /** The most listeners connected at once; arrivals past it wait for a place. */
  maxListeners: number;
  /** How long a listener stays once in (0 = until stop()). */
  holdMs: number;
  /** A closed model: a listener whose hold ended joins again at once (default: it leaves). */
  loop?: boolean;
  reconnect: 'jitter' | 'storm' | 'never';
  backoffBaseMs: number;
  backoffCapMs: number;
  reactionsPerMinute: number;
  /** Drop every listener's socket once, this long after it got in (0 = never): a reconnect wave. */
  dropAfterMs: number;
  timeoutMs: number;
  clock: Clock;
  random: () => number;
  metrics?: ClientMetrics;
  /**
   * Where the conversation is now, asked when a join finds the space over (after a crash, say): the
   * space to try next, or null for none yet. Without it, a listener stops at an ended space. With it,
   * listeners keep trying with backoff — the dead link first, the new room once there is one.
   */
  follow?: () => Promise<string | null>;
  /** Where to tally joins, connects and audio (default: the swarm's own). */
  stats?: { join: KindStats; connect: KindStats; audio: KindStats };
}

/** A reconnect delay: 0 for a storm, else full jitter — uniform over [0, min(cap, base·2^(n−1))). */
export function backoffDelay(policy: 'jitter' | 'storm' | 'never', baseMs: number, capMs: number, failures: number, u: number): number {
  if (policy === 'storm') return 0;
  return u * Math.min(capMs, baseMs * 2 ** Math.max(0, failures - 1));
}

/** When listeners arrive under an arrival-rate profile: the times the integrated rate crosses 1, 2, 3… */
export function arrivalTimes(phases: readonly Phase[], max: number, resolutionMs = 10): number[] {
  const out: number[] = [];
  const total = phases.reduce((s, p) => s + p.duration, 0) * 1000;
  let acc = 0;
  for (let t = 0; t < total && out.length < max; t += resolutionMs) {
    acc += (rateAt(phases, (t + resolutionMs / 2) / 1000) * resolutionMs) / 1000;
    // a little slack, so that rounding in the sum does not lose the last arrival
    while (acc >= 1 - 1e-9 && out.length < max) {
      out.push(t);
      acc -= 1;
    }
  }
  return out;
}

/**
 * A swarm of real WebSocket listeners: each joins through the HTTP join path, opens the socket with
 * its ticket, receives audio (measuring capture → receipt delay) and counts, reacts, and comes back
 * after a refusal or a reconnectable close — with full-jitter backoff, or at once (a reconnect storm).
 * Join latency is measured from the intended arrival time, so a slow server cannot hide its queue
 * (no coordinated omission). stop() is idempotent.
 */
export class Swarm {
  readonly join: KindStats;
  readonly connect: KindStats;
  readonly audio: KindStats;
  attempts = 0;
  admitted = 0;
  connected = 0;
  chunks = 0;
  gaps = 0;
  /** Sockets still opening when the run ended: neither a success nor a failure of the server. */
  cutShort = 0;
  /** Join calls still waiting for an answer when the run ended (the server may have admitted them). */
  joinsAbandoned = 0;
  readonly closes: Record<string, number> = {};
  private readonly abort = new AbortController();
  private readonly sockets = new Set<WebSocket>();
  private readonly waiting: (() => void)[] = [];
  private inside = 0;
  private tasks: Promise<void>[] = [];
  private stopping: Promise<void> | null = null;
  private t0 = 0;
  /** The space listeners join: the one given, or where `follow` last said the conversation went. */
  spaceId: string;

  constructor(private readonly o: SwarmOptions) {
    this.spaceId = o.spaceId;
    this.join = o.stats?.join ?? new KindStats('join');
    this.connect = o.stats?.connect ?? new KindStats('ws_connect');
    this.audio = o.stats?.audio ?? new KindStats('audio');
    setMaxListeners(o.arrivalsMs.length + 16, this.abort.signal);
  }

  start(): void {
    this.t0 = this.o.clock.now();
    this.tasks = this.o.arrivalsMs.map((at, i) => this.listener(i, at).catch(() => undefined));
  }

  /** Resolves when every listener has finished (held its time, given up, or been stopped). */
  async settled(): Promise<void> {
    await Promise.all(this.tasks);
  }

  /**
   * An open-loop generator's arrivals: one that is late (a stall, a busy machine) goes at once, back to back
   * with the others due, and its latency counts from when it was due. That is meant: the offered load does not
   * bend to the server. It is not a catch-up loop that starves timers: each arrival's own work ends at its
   * first network wait (the join request), so a late batch is bounded by the arrivals due.
   */
  private async sleepUntil(t: number): Promise<void> {
    await this.o.clock.sleep(t - this.o.clock.now(), this.abort.signal);
  }

  private async slot(): Promise<void> {
    while (this.inside >= this.o.maxListeners && !this.abort.signal.aborted) await new Promise<void>((r) => this.waiting.push(r));
    this.inside++;
  }

  private release(): void {
    this.inside--;
    this.waiting.shift()?.();
  }

  private backoff(failures: number): number {
    return backoffDelay(this.o.reconnect, this.o.backoffBaseMs, this.o.backoffCapMs, failures, this.o.random());
  }

  private async listener(i: number, arrivalMs: number): Promise<void> {
    const signal = this.abort.signal;
    let intended = this.t0 + arrivalMs;
    await this.sleepUntil(intended);
    let failures = 0;
    let dropped = false;
    while (!signal.aborted) {
      await this.slot();
      if (signal.aborted) return this.release();
      const wsUrl = await this.joinOnce(i, intended);
      if (wsUrl === 'gone' && this.o.follow && !signal.aborted && this.o.reconnect !== 'never') {
        this.release();
        failures++;
        const next = await this.o.follow().catch(() => null);
        if (next) this.spaceId = next;
        intended = this.o.clock.now() + this.backoff(failures);
        await this.sleepUntil(intended);
        continue;
      }
      if (wsUrl === 'gone') return this.release();
      if (wsUrl === null) {
        this.release();
        failures++;
        if (this.o.reconnect === 'never') return;
        intended = this.o.clock.now() + this.backoff(failures);
        await this.sleepUntil(intended);
        continue;
      }
      if (signal.aborted) {
        // admitted as the run ended: the ticket goes unused, and stop() is not left waiting on a new socket
        this.cutShort++;
        return this.release();
      }
      const code = await this.listen(wsUrl, !dropped);
      this.release();
      dropped = true;
      if (code === 'held' && this.o.loop && !signal.aborted) {
        failures = 0;
        intended = this.o.clock.now();
        continue;
      }
      if (code === 'held' || signal.aborted || this.o.reconnect === 'never' || !mayReconnect(code)) return;
      failures = code === 1000 ? 0 : failures + 1;
      intended = this.o.clock.now() + this.backoff(Math.max(1, failures));
      await this.sleepUntil(intended);
    }
  }

  /** One join call: the wsUrl, null when refused (retry), or 'gone' when the space is over. */
  private async joinOnce(i: number, intended: number): Promise<string | null | 'gone'> {
    const { clock, metrics } = this.o;
    this.attempts++;
    const record = (outcome: 'ok' | 'refused' | 'error' | 'timeout', code?: string): void => {
      const ms = clock.now() - intended;
      this.join.record(outcome, ms, code);
      metrics?.requests.inc({ kind: 'join', outcome });
      metrics?.duration.observe({ kind: 'join' }, ms / 1000);
    };
    try {
      const res = await fetch(new URL(`/api/v1/spaces/${this.spaceId}/join`, this.o.base), {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ name: `swarm-${i}` }),
        signal: AbortSignal.any([this.abort.signal, AbortSignal.timeout(this.o.timeoutMs)]),
      });
      const body = (await res.json().catch(() => ({}))) as { wsUrl?: string; error?: { code?: string } };
      if (res.ok && body.wsUrl) {
        this.admitted++;
        record('ok');
        return body.wsUrl;
      }
      const code = body.error?.code ?? `HTTP_${res.status}`;
      record(res.status === 429 || res.status === 503 ? 'refused' : 'error', code);
      return code === 'SPACE_ENDED' || code === 'SPACE_NOT_FOUND' ? 'gone' : null;
    } catch (err) {
      if (this.abort.signal.aborted) {
        this.joinsAbandoned++;
        return 'gone';
      }
      const timeout = (err as Error).name === 'TimeoutError';
      record(timeout ? 'timeout' : 'error', timeout ? undefined : 'network');
      return null;
    }
  }

  /** Holds the socket; resolves with the close code, or 'held' when the hold time ran out. */
  private listen(wsUrl: string, mayDrop: boolean): Promise<number | 'held'> {
    const { clock, metrics } = this.o;
    return new Promise((resolve) => {
      const started = clock.now();
      const ws = new WebSocket(wsUrl, { handshakeTimeout: this.o.timeoutMs });
      this.sockets.add(ws);
      let open = false;
      let settled = false; // the connect attempt has an outcome
      let failure = '';
      let held = false;
      let lastSeq = -1;
      const timers = new AbortController();
      ws.on('open', () => {
        open = true;
        settled = true;
        this.connected++;
        metrics?.wsOpen.inc();
        const ms = clock.now() - started;
        this.connect.record('ok', ms);
        metrics?.requests.inc({ kind: 'ws_connect', outcome: 'ok' });
        metrics?.duration.observe({ kind: 'ws_connect' }, ms / 1000);
        if (this.o.holdMs > 0) void clock.sleep(this.o.holdMs, timers.signal).then(() => {
          if (timers.signal.aborted) return;
          held = true;
          ws.close(1000, 'done listening');
        });
        if (mayDrop && this.o.dropAfterMs > 0) void clock.sleep(this.o.dropAfterMs, timers.signal).then(() => !timers.signal.aborted && ws.terminate());
        if (this.o.reactionsPerMinute > 0) void this.react(ws, timers.signal);
      });
      ws.on('unexpected-response', (_req, res) => {
        const outcome = res.statusCode === 429 || res.statusCode === 503 ? 'refused' : 'error';
        settled = true;
        this.connect.record(outcome, clock.now() - started, `HTTP_${res.statusCode}`);
        metrics?.requests.inc({ kind: 'ws_connect', outcome });
        res.resume();
        ws.terminate();
      });
      ws.on('message', (data: Buffer, binary) => {
        if (!binary) return;
        const h = peekAudioHeader(data);
        if (!h) return;
        this.chunks++;
        if (lastSeq >= 0 && h.seq > lastSeq + 1) this.gaps += h.seq - lastSeq - 1;
        lastSeq = h.seq;
        const delay = Math.max(0, Date.now() - h.captureMs);
        this.audio.record('ok', delay);
        metrics?.audioDelay.observe(delay / 1000);
      });
      ws.on('error', (err) => (failure ||= err.message));
      ws.on('close', (code) => {
        timers.abort();
        this.sockets.delete(ws);
        if (!settled) {
          // the handshake never finished: cut short by the end of the run, or failed (reset, timeout)
          if (this.stopping) this.cutShort++;
          else {
            const outcome = /timed out/i.test(failure) ? 'timeout' : 'error';
            this.connect.record(outcome, clock.now() - started, outcome === 'timeout' ? undefined : 'WS_HANDSHAKE');
            metrics?.requests.inc({ kind: 'ws_connect', outcome });
          }
        }
        if (open) {
          this.connected--;
          metrics?.wsOpen.dec();
        }
        this.closes[String(code)] = (this.closes[String(code)] ?? 0) + 1;
        resolve(held ? 'held' : code);
      });
    });
  }

  private async react(ws: WebSocket, signal: AbortSignal): Promise<void> {
    const every = 60_000 / this.o.reactionsPerMinute;
    const emoji = ['👏', '🔥', '💯', '❤️'];
    while (!signal.aborted && ws.readyState === ws.OPEN) {
      await this.o.clock.sleep(every * (0.5 + this.o.random()), signal);
      if (ws.readyState === ws.OPEN) ws.send(JSON.stringify({ type: 'react', emoji: emoji[Math.floor(this.o.random() * emoji.length)] }));
    }
  }

  stop(): Promise<void> {
    this.stopping ??= (async () => {
      this.abort.abort();
      for (const w of this.waiting.splice(0)) w();
      for (const ws of this.sockets) ws.close(1000, 'load over');
      await Promise.all(this.tasks);
    })();
    return this.stopping;
  }
}
