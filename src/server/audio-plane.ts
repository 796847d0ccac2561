import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import type { Clock } from '../clock.js';
import type { ServerConfig } from '../config.js';
import type { ServerMetrics } from '../metrics/index.js';
import { peekAudioHeader, validateAudioChunk } from '../protocol/index.js';
import type { Space } from '../space/index.js';
import type { Conn } from './connections.js';
import { binaryFrame, sendFrame } from './preframed.js';
import { Recording } from './recording.js';

/** How many recent chunks HTTP listeners can fetch: 30 s at the synthetic host's 100 ms cadence. */
export const LIVE_WINDOW_CHUNKS = 300;

interface Track {
  recording: Recording | null;
  /** The live window for HTTP listeners (the CDN view): the most recent chunks, by sequence number. */
  recent: Buffer[];
}

/**
 * The audio plane: ingest (framing and order), the live window HTTP listeners fetch from, the recording,
 * and the fan-out to WebSocket listeners with per-listener backpressure. The host socket and the synthetic
 * host both come in through `ingest`.
 */
export class AudioPlane {
  private readonly tracks = new Map<string, Track>();

  constructor(
    private readonly config: ServerConfig,
    private readonly clock: Clock,
    private readonly metrics: ServerMetrics,
    private readonly log: Logger,
    private readonly recordingDir: () => string,
  ) {}

  private track(spaceId: string): Track {
    let t = this.tracks.get(spaceId);
    if (!t) {
      t = { recording: null, recent: [] };
      this.tracks.set(spaceId, t);
    }
    return t;
  }

  /** The live window: sequence numbers [first, last] an HTTP listener can fetch now (empty: first > last). */
  liveWindow(space: Space): { first: number; last: number } {
    const n = this.tracks.get(space.id)?.recent.length ?? 0;
    return { first: space.chunks - n, last: space.chunks - 1 };
  }

  /** One chunk of the live window, or null when it is not sent yet or has left the window. */
  chunk(space: Space, seq: number): Buffer | null {
    const recent = this.tracks.get(space.id)?.recent;
    if (!recent) return null;
    const i = seq - (space.chunks - recent.length);
    return i >= 0 && i < recent.length ? recent[i]! : null;
  }

  recordingOf(spaceId: string): Recording | null {
    return this.tracks.get(spaceId)?.recording ?? null;
  }

  /** The space went live: its recording opens (on the one instance that writes it). */
  async open(space: Space): Promise<void> {
    const t = this.track(space.id);
    if (!t.recording) {
      t.recording = new Recording(this.recordingDir(), space.id, this.log, space.title, space.chunks);
      await t.recording.open();
    }
  }

  /**
   * This instance took the space over from a dead owner: it continues the owner's recording in the
   * shared directory and fills it from its own live window (the chunks the owner had not written yet).
   * Returns how many chunks it filled in, and whether the owner's file was there to continue.
   */
  async takeOver(space: Space): Promise<{ resumed: boolean; filled: number; lastSeq: number }> {
    const t = this.track(space.id);
    if (t.recording) return { resumed: true, filled: 0, lastSeq: t.recording.lastSeq };
    const first = space.chunks - t.recent.length;
    const { recording, resumed } = await Recording.resume(this.recordingDir(), space.id, this.log, space.title, first);
    t.recording = recording;
    let filled = 0;
    for (const buf of t.recent) {
      const n = recording.append(buf);
      if (n) filled++;
      this.metrics.recordingBytes.inc(n);
    }
    return { resumed, filled, lastSeq: recording.lastSeq };
  }

  /** Another instance owns the space now: stop writing its recording, leave the file to the owner. */
  async abandon(space: Space): Promise<void> {
    const t = this.tracks.get(space.id);
    await t?.recording?.abandon();
    if (t) t.recording = null;
  }

  /** Whether the finished recording can be fetched here (written here, or by another instance into the shared directory). */
  recordingReady(space: Space): boolean {
    const own = this.recordingOf(space.id);
    if (own) return own.ready;
    return space.state === 'ended' && existsSync(join(this.recordingDir(), `${space.id}.opus`));
  }

  /** The finished recording, written here or by another instance into the shared directory. */
  async published(space: Space): Promise<Recording | null> {
    const own = this.recordingOf(space.id);
    if (own) return own.ready ? own : null;
    if (space.state !== 'ended') return null;
    const found = await Recording.published(this.recordingDir(), space.id, this.log);
    if (found) this.track(space.id).recording = found;
    return found;
  }

  /** The space ended: its recording is published. */
  async close(space: Space): Promise<void> {
    await this.tracks.get(space.id)?.recording?.finish();
  }

  /**
   * Checks one audio chunk from this instance's host for a live space: framing and order. Returns an error
   * text, or null when it may be published (then `deliver` takes it, on every instance).
   */
  check(space: Space, buf: Buffer): string | null {
    if (space.state !== 'live') return `the space is ${space.state}, not live`;
    const v = validateAudioChunk(buf);
    if (!v.ok) return `malformed audio chunk: ${v.code}`;
    if (v.seq !== space.chunks) return `out of order: expected sequence ${space.chunks}, got ${v.seq}`;
    return null;
  }

  /**
   * A chunk to send to this instance's `listeners`, from this instance or another: each goes out once and
   * in order (an older one is skipped; one past a gap, chunks lost while Redis was away, starts the live
   * window afresh), into the recording where this instance writes it, and into the live window.
   */
  deliver(space: Space, buf: Buffer, listeners: Iterable<Conn>): void {
    const h = peekAudioHeader(buf);
    if (!h || space.state !== 'live') return;
    const gap = h.seq > space.chunks;
    if (!space.acceptDelivered(h.seq)) {
      this.metrics.audioChunksDropped.inc({ reason: 'duplicate' });
      return;
    }
    const t = this.track(space.id);
    if (gap) t.recent = [];
    this.metrics.recordingBytes.inc(t.recording?.append(buf) ?? 0);
    t.recent.push(buf);
    if (t.recent.length > LIVE_WINDOW_CHUNKS) t.recent.shift();
    this.fanOut(listeners, buf, h.seq);
  }

  /** The hot path: one frame built once, written to every listener; nothing allocated per listener. */
  private fanOut(listeners: Iterable<Conn>, buf: Buffer, seq: number): void {
    const t0 = performance.now();
    const frame = binaryFrame(buf);
    const skip = this.config.skipBufferedBytes;
    let sent = 0;
    let dropped = 0;
    let now = 0;
    for (const c of listeners) {
      const ws = c.ws;
      // a listener back from another instance that is ahead of this one has heard this chunk there
      if (ws.readyState !== 1 || c.after >= seq) continue;
      if (ws.bufferedAmount > skip) {
        dropped++;
        now ||= this.clock.now();
        if (c.behindSince === 0) c.behindSince = now;
        else if (now - c.behindSince > this.config.slowConsumerMs) {
          this.metrics.audioChunksDropped.inc({ reason: 'slow_consumer_closed' });
          // a listener this far behind cannot take a close frame either
          ws.terminate();
        }
        continue;
      }
      c.behindSince = 0;
      if (!sendFrame(ws, frame)) ws.send(buf);
      sent++;
    }
    if (sent) this.metrics.audioChunksSent.inc(sent);
    if (dropped) this.metrics.audioChunksDropped.inc({ reason: 'backpressure' }, dropped);
    this.metrics.fanoutDuration.observe((performance.now() - t0) / 1000);
  }
}
