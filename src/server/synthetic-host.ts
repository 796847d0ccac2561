import type { Clock } from '../clock.js';
import { encodeAudioChunk } from '../protocol/index.js';
import type { Space } from '../space/index.js';

export interface SyntheticHostOptions {
  chunkIntervalMs: number;
  framesPerChunk: number;
  frameBytes: number;
}

/**
 * A built-in host that "speaks": Opus-sized frames at real cadence, so a space has audio without a
 * microphone. It goes through the same ingest path as a host socket. stop() is idempotent.
 */
export class SyntheticHost {
  private abort: AbortController | null = null;
  private loop: Promise<void> | null = null;

  constructor(
    private readonly clock: Clock,
    private readonly space: Space,
    private readonly ingest: (space: Space, chunk: Buffer) => string | null,
    private readonly opts: SyntheticHostOptions,
  ) {}

  start(): void {
    if (this.abort) return;
    const abort = (this.abort = new AbortController());
    // deterministic filler bytes; real Opus would be incompressible, so are these (a byte ramp)
    const frames = Array.from({ length: this.opts.framesPerChunk }, (_, i) =>
      Uint8Array.from({ length: this.opts.frameBytes }, (_, j) => (i * 31 + j * 7) & 0xff),
    );
    this.loop = (async () => {
      const t0 = this.clock.now();
      for (let k = 0; !abort.signal.aborted && this.space.state === 'live'; k++) {
        const chunk = encodeAudioChunk({ seq: this.space.chunks, captureMs: this.clock.now(), frames });
        this.ingest(this.space, chunk);
        await this.clock.sleep(t0 + (k + 1) * this.opts.chunkIntervalMs - this.clock.now(), abort.signal);
      }
    })();
  }

  async stop(): Promise<void> {
    this.abort?.abort();
    await this.loop;
  }
}
