import hdr from 'hdr-histogram-js';
import { io as ioClient, type Socket } from 'socket.io-client';
import { WebSocket } from 'ws';

export type Flavor = 'stampede' | 'ws' | 'socketio';

/**
 * The one client swarm every fan-out server is measured with: N listeners, each counting the chunks it
 * receives and the delay from capture (in the chunk header) to receipt, recorded only while measuring.
 */
export class BenchSwarm {
  readonly delay = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 60_000, numberOfSignificantValueDigits: 3 });
  received = 0;
  measuring = false;
  private readonly closers: (() => void)[] = [];

  private onChunk(buf: Buffer): void {
    if (!this.measuring) return;
    this.received++;
    this.delay.recordValue(Math.max(1, Date.now() - buf.readDoubleBE(8)));
  }

  /**
   * Connects up to n listeners, 100 at a time, for at most budgetMs; returns how many connected (a
   * saturated server refuses or times out some, and the budget keeps a run bounded).
   */
  async connect(flavor: Flavor, base: string, n: number, spaceId?: string, budgetMs = 60_000): Promise<number> {
    const batch = 100;
    const deadline = Date.now() + budgetMs;
    let connected = 0;
    for (let i = 0; i < n && Date.now() < deadline; i += batch) {
      const results = await Promise.allSettled(Array.from({ length: Math.min(batch, n - i) }, () => this.one(flavor, base, spaceId)));
      connected += results.filter((r) => r.status === 'fulfilled').length;
    }
    return connected;
  }

  private async one(flavor: Flavor, base: string, spaceId?: string): Promise<void> {
    if (flavor === 'socketio') {
      const s: Socket = ioClient(base, { transports: ['websocket'], reconnection: false, forceNew: true, timeout: 10_000 });
      s.on('audio', (b: Buffer) => this.onChunk(Buffer.from(b)));
      this.closers.push(() => s.disconnect());
      await new Promise<void>((resolve, reject) => {
        s.once('connect', () => resolve());
        s.once('connect_error', (err) => {
          s.disconnect();
          reject(err);
        });
      });
      return;
    }
    let url = base.replace(/^http/, 'ws');
    if (flavor === 'stampede') {
      const res = await fetch(`${base}/api/v1/spaces/${spaceId}/join`, { method: 'POST' });
      if (!res.ok) throw new Error(`join refused: ${res.status}`);
      url = ((await res.json()) as { wsUrl: string }).wsUrl;
    }
    const ws = new WebSocket(url);
    ws.on('message', (d: Buffer, binary) => binary && this.onChunk(d));
    ws.on('error', () => undefined);
    this.closers.push(() => ws.terminate());
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        ws.terminate();
        reject(new Error('connect timeout'));
      }, 10_000);
      ws.once('open', () => {
        clearTimeout(timer);
        resolve();
      });
      ws.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
    });
  }

  close(): void {
    for (const c of this.closers.splice(0)) c();
  }
}
