import { setMaxListeners } from 'node:events';
import type { Logger } from 'pino';
import { WebSocket } from 'ws';
import type { Clock } from './clock.js';
import { mayReconnect } from './protocol/index.js';

export interface RealCrowdOptions {
  /** Base URL of the server, e.g. http://127.0.0.1:8080 (loopback only). */
  url: string;
  spaceId: string;
  listeners: number;
  clock: Clock;
  random: () => number;
  logger: Logger;
  /** Full-jitter backoff bounds for a refused join, in real milliseconds. */
  backoffBaseMs?: number;
  backoffCapMs?: number;
  /** When each listener makes its first attempt, in real ms from start(); default: within 2 s. */
  arrivalsMs?: number[];
}

export interface RealCrowdStats {
  attempts: number;
  admitted: number;
  refused: Record<string, number>;
  connected: number;
  chunks: number;
}

/**
 * The real clients of a replay: a few hundred actual listeners that join through the HTTP join path,
 * back off with full jitter when refused ("This Space is not available"), hold the WebSocket, and
 * come back after a reconnectable close. They feel the modelled outage because the server gates their
 * joins by the model. stop() is idempotent.
 */
export class RealCrowd {
  readonly stats: RealCrowdStats = { attempts: 0, admitted: 0, refused: {}, connected: 0, chunks: 0 };
  private readonly abort = new AbortController();
  private readonly sockets = new Set<WebSocket>();
  private tasks: Promise<void>[] = [];
  private stopping: Promise<void> | null = null;

  constructor(private readonly o: RealCrowdOptions) {
    const host = new URL(o.url).hostname;
    if (!['127.0.0.1', 'localhost', '[::1]', '::1'].includes(host)) throw new Error(`the real crowd only targets loopback, not ${host}`);
  }

  start(): void {
    // every listener waits on the same abort signal
    setMaxListeners(this.o.listeners + 10, this.abort.signal);
    for (let i = 0; i < this.o.listeners; i++) this.tasks.push(this.listener(i));
  }

  private async listener(i: number): Promise<void> {
    const { clock, random } = this.o;
    const signal = this.abort.signal;
    await clock.sleep(this.o.arrivalsMs?.[i] ?? random() * 2_000, signal);
    let failures = 0;
    while (!signal.aborted) {
      const outcome = await this.joinOnce(i);
      if (outcome === 'ended') return;
      if (outcome === 'listened') {
        failures = 0;
        continue;
      }
      failures++;
      const cap = Math.min(this.o.backoffCapMs ?? 5_000, (this.o.backoffBaseMs ?? 250) * 2 ** failures);
      await clock.sleep(random() * cap, signal);
    }
  }

  /** One join + listen cycle: 'listened' after a session that may be resumed, 'refused', or 'ended'. */
  private async joinOnce(i: number): Promise<'listened' | 'refused' | 'ended'> {
    this.stats.attempts++;
    let res: Response;
    try {
      res = await fetch(`${this.o.url}/api/v1/spaces/${this.o.spaceId}/join`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ name: `real-${i}` }),
        signal: this.abort.signal,
      });
    } catch {
      this.refused('network');
      return 'refused';
    }
    const body = (await res.json().catch(() => ({}))) as { wsUrl?: string; error?: { code?: string } };
    if (!res.ok || !body.wsUrl) {
      const code = body.error?.code ?? `HTTP_${res.status}`;
      this.refused(code);
      return code === 'SPACE_ENDED' || code === 'SPACE_NOT_FOUND' ? 'ended' : 'refused';
    }
    this.stats.admitted++;
    const code = await this.listen(body.wsUrl);
    return mayReconnect(code) && !this.abort.signal.aborted ? 'listened' : 'ended';
  }

  private listen(wsUrl: string): Promise<number> {
    return new Promise((resolve) => {
      const ws = new WebSocket(wsUrl);
      this.sockets.add(ws);
      let open = false;
      ws.on('open', () => {
        open = true;
        this.stats.connected++;
      });
      ws.on('message', (_d, binary) => {
        if (binary) this.stats.chunks++;
      });
      ws.on('error', () => undefined);
      ws.on('close', (code) => {
        if (open) this.stats.connected--;
        this.sockets.delete(ws);
        resolve(code);
      });
    });
  }

  private refused(code: string): void {
    this.stats.refused[code] = (this.stats.refused[code] ?? 0) + 1;
  }

  stop(): Promise<void> {
    this.stopping ??= (async () => {
      this.abort.abort();
      for (const ws of this.sockets) ws.close(1000, 'replay over');
      await Promise.all(this.tasks);
    })();
    return this.stopping;
  }
}
