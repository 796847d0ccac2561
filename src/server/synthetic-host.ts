import { OpusVoice } from '../audio/index.js';
import type { Clock } from '../clock.js';
import { encodeAudioChunk } from '../protocol/index.js';
import type { Space } from '../space/index.js';

export interface SyntheticHostOptions {
  chunkIntervalMs: number;
  /** Opus bitrate of the synthetic voice, bits/s. */
  syntheticBitrate: number;
}

/**
 * A built-in host that speaks: a voice-like signal encoded as real Opus (20 ms frames, libopus in
 * WebAssembly), sent at real cadence, so a space has audio to hear without a microphone. It goes
 * through the same ingest path as a host socket. stop() is idempotent.
 */
export class SyntheticHost {
  private abort: AbortController | null = null;
  private loop: Promise<void> | null = null;

  constructor(
    private readonly clock: Clock,
    private readonly space: Space,
    private readonly ingest: (space: Space, chunk: Buffer) => string | null,
    private readonly opts: SyntheticHostOptions,
    private readonly random: () => number,
  ) {}

  start(): void {
    if (this.abort) return;
    const abort = (this.abort = new AbortController());
    const voice = new OpusVoice(this.random, { bitrate: this.opts.syntheticBitrate });
    // each chunk carries its own span of audio, so the recording lasts as long as the space was live
    const framesPerChunk = Math.max(1, Math.round(this.opts.chunkIntervalMs / 20));
    this.loop = (async () => {
      try {
        const t0 = this.clock.now();
        for (let k = 0; !abort.signal.aborted && this.space.state === 'live'; k++) {
          const frames = Array.from({ length: framesPerChunk }, () => voice.nextPacket());
          this.ingest(this.space, encodeAudioChunk({ seq: this.space.chunks, captureMs: this.clock.now(), frames }));
          const wait = t0 + (k + 1) * this.opts.chunkIntervalMs - this.clock.now();
          // behind (a busy machine): the late chunks follow each other a turn of the event loop apart, so the
          // server's timers and I/O (a cluster's lease renewal among them) run while it catches up
          await (wait > 0 ? this.clock.sleep(wait, abort.signal) : this.clock.turn());
        }
      } finally {
        voice.delete();
      }
    })();
  }

  async stop(): Promise<void> {
    this.abort?.abort();
    await this.loop;
  }
}
