import { existsSync } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import type { Clock } from '../clock.js';
import type { ServerConfig } from '../config.js';
import { ByteQuota } from '../guard/index.js';
import type { ServerMetrics } from '../metrics/index.js';
import { MAX_CHUNK_BYTES, peekAudioHeader, validateAudioChunk } from '../protocol/index.js';
import type { Space } from '../space/index.js';
import type { Conn } from './connections.js';
import type { DenseSockets } from './dense-sockets.js';
import { DirectWriter } from './direct-write.js';
import { NO_FAULTS, type FanOut, type ServerFaults } from './faults.js';
import { PacedQueue, type PacedJob } from './paced.js';
import { binaryFrame, textFrame } from './preframed.js';
import { Recording, type RecordingOptions } from './recording.js';

/** How many recent chunks HTTP listeners can fetch: 30 s at the synthetic host's 100 ms cadence. */
export const LIVE_WINDOW_CHUNKS = 300;

/** Fan-out writes between two readings of the pacing clock: 32 writes are about 0.1–0.3 ms. */
const FANOUT_CHECK_EVERY = 32;

interface Track {
  recording: Recording | null;
  /** The live window for HTTP listeners (the CDN view): the most recent chunks, by sequence number. */
  recent: Buffer[];
  /** Frames held for the next coalesced write (`fanoutCoalesceChunks` > 1), and the last one's sequence number. */
  held: Buffer[];
  heldSeq: number;
  /** Set while frames are held: aborting it cancels the flush due `fanoutCoalesceMaxHoldMs` after the first. */
  holdTimer: AbortController | null;
  /** Bytes in `recent`. */
  recentBytes: number;
  /** Text messages for every listener (counts, reactions) waiting to ride on the next chunk's write. */
  carried: Buffer[];
  /** When this instance last fanned a chunk of the space out (ms), so text waits for audio only while audio flows. */
  lastAudioAt: number;
}

/** One chunk's fan-out (its frames, with any carried text in front) to a room's listeners as they were when it came. */
interface FanoutJob extends PacedJob {
  room: DenseSockets<Conn>;
  /** The room's slots: the room's own array while the job runs at once, a copy from when the chunk came once it waits. */
  slots: Int32Array;
  data: Buffer;
  /** The carried text messages alone, for a listener that does not get the chunk. */
  text: readonly Buffer[];
  chunks: number;
  seq: number;
  t0: number;
  sent: number;
  dropped: number;
  /** Of `sent`: written straight to the socket's handle, and of those taken only in part. */
  direct: number;
  partial: number;
}

/**
 * The audio plane: ingest (framing and order), the live window HTTP listeners fetch from, the recording,
 * and the fan-out to WebSocket listeners with per-listener backpressure. The host socket and the synthetic
 * host both come in through `ingest`.
 */
export class AudioPlane {
  private readonly tracks = new Map<string, Track>();
  /** The disk quota every recording of this process shares (docs/reliability.md #24). */
  private readonly quota: ByteQuota;
  /** Bytes in every track's live window together, bounded by `liveWindowTotalBytes` (docs/reliability.md #22). */
  private windowBytes = 0;
  /** The fan-out, or the fault injector's route around it (without faults: the fan-out itself). */
  private readonly send: FanOut<DenseSockets<Conn>>;
  /** Counts a recording whose file write failed (new or resumed after a takeover). */
  private readonly countRecordingFailure = (): void => this.metrics.recordingFailures.inc();
  /** What every recording written here is given: the failure count, the disk quota, this instance's name on its files. */
  private get recordingOptions(): RecordingOptions {
    return { onFailed: this.countRecordingFailure, quota: this.quota, writer: this.config.instanceId };
  }
  /** Fan-out writes, paced: at most `fanoutTurnMs` of them (and `fanoutWritesPerTurn`) between two event-loop turns. */
  private readonly writes: PacedQueue<FanoutJob>;
  /** Writes past Node's Writable layer to listeners with nothing queued; null: `socket.write` for all (`fanoutDirectWrite`). */
  private readonly direct: DirectWriter | null;

  constructor(
    private readonly config: ServerConfig,
    private readonly clock: Clock,
    private readonly metrics: ServerMetrics,
    private readonly log: Logger,
    private readonly recordingDir: () => string,
    private readonly faults: ServerFaults = NO_FAULTS,
    /** A text message to one connection through its bounded outbound path (the connections' `send`). */
    private readonly sendText: (conn: Conn, data: Buffer) => void = () => undefined,
  ) {
    this.writes = new PacedQueue<FanoutJob>({
      ms: config.fanoutTurnMs,
      items: config.fanoutWritesPerTurn,
      // a write is a few µs: the clock is read once per batch
      checkEvery: FANOUT_CHECK_EVERY,
      now: () => clock.monotonic(),
      run: (job, from, to) => this.writeRange(job, from, to),
      done: (job) => this.finished(job),
      // a chunk left for later turns goes to the room as it was when the chunk came
      park: (job) => void (job.slots = job.slots.slice(0, job.size)),
    });
    this.direct = config.fanoutDirectWrite ? DirectWriter.create() : null;
    this.quota = new ByteQuota(config.recordingQuotaBytes, (used) => metrics.recordingQuotaUsed.set(used));
    metrics.recordingQuotaLimit.set(config.recordingQuotaBytes);
    metrics.liveWindowLimit.set(config.liveWindowTotalBytes);
    this.send = faults.route(this.fanOut.bind(this));
    faults.onDiskFault((spaceId) => this.failRecordings(spaceId));
  }

  /** Bytes queued for `socket` outside Node's stream (a direct write the kernel took only in part): they count toward a connection's outbound cap too. */
  queuedBeside(socket: Duplex): number {
    return this.direct === null ? 0 : this.direct.pending(socket);
  }

  /** A disk fault: the open recordings (of one space, or all) fail their write; returns how many did. */
  private failRecordings(spaceId: string | null): number {
    let n = 0;
    for (const [id, t] of this.tracks) if ((spaceId === null || id === spaceId) && t.recording?.failWrite('injected disk fault')) n++;
    return n;
  }

  private track(spaceId: string): Track {
    let t = this.tracks.get(spaceId);
    if (!t) {
      t = { recording: null, recent: [], held: [], heldSeq: -1, holdTimer: null, recentBytes: 0, carried: [], lastAudioAt: -Infinity };
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

  /** Whether one more chunk could be recorded: false once the recordings have used their disk quota. */
  recordingRoom(): boolean {
    return this.quota.fits(MAX_CHUNK_BYTES + 27 + 255);
  }

  /** Bytes the live windows of all spaces hold together. */
  get liveWindowBytes(): number {
    return this.windowBytes;
  }

  /**
   * Counts what the recording directory already holds (`*.opus`, `*.opus.partial`) toward the quota, so a
   * restarted process does not start at 0 (docs/reliability.md #24); returns the bytes counted.
   */
  async countRecordingsOnDisk(dir: string): Promise<number> {
    const names = await readdir(dir).catch(() => [] as string[]);
    let bytes = 0;
    for (const name of names) {
      if (!name.endsWith('.opus') && !name.endsWith('.opus.partial')) continue;
      const st = await stat(join(dir, name)).catch(() => null);
      if (st?.isFile()) bytes += st.size;
    }
    this.quota.count(bytes);
    return bytes;
  }

  /** How many spaces the plane keeps anything for (a window, a recording). */
  get trackCount(): number {
    return this.tracks.size;
  }

  /** A space the server no longer remembers: its window and its (finished) recording's entry go. */
  forget(spaceId: string): void {
    const t = this.tracks.get(spaceId);
    if (!t) return;
    this.dropHeld(t);
    this.dropWindow(t);
    this.tracks.delete(spaceId);
  }

  /** The server stops: no held chunk is flushed any more (the recording and the live window have them). */
  stop(): void {
    for (const t of this.tracks.values()) this.dropHeld(t);
  }

  private dropHeld(t: Track): void {
    t.holdTimer?.abort();
    t.holdTimer = null;
    t.held = [];
  }

  private dropWindow(t: Track): void {
    this.windowBytes -= t.recentBytes;
    this.metrics.liveWindowBytes.set(this.windowBytes);
    t.recent = [];
    t.recentBytes = 0;
  }

  recordingOf(spaceId: string): Recording | null {
    return this.tracks.get(spaceId)?.recording ?? null;
  }

  /** The space went live: its recording opens (on the one instance that writes it). */
  async open(space: Space): Promise<void> {
    const t = this.track(space.id);
    if (!t.recording) {
      t.recording = new Recording(this.recordingDir(), space.id, this.log, space.title, space.chunks, this.recordingOptions);
      await t.recording.open();
      if (this.faults.diskFails(space.id) && t.recording.failWrite('injected disk fault')) this.faults.recordingFailed();
    }
  }

  /**
   * This instance took the space over from the instance `from` (dead, or stalled past its lease): it
   * continues that owner's recording from the shared directory in a file of its own and fills it from its
   * own live window (the chunks the owner had not written yet). Returns how many chunks it filled in, and
   * whether the owner's file was there to continue.
   */
  async takeOver(space: Space, from: string): Promise<{ resumed: boolean; filled: number; lastSeq: number }> {
    const t = this.track(space.id);
    if (t.recording) return { resumed: true, filled: 0, lastSeq: t.recording.lastSeq };
    const first = space.chunks - t.recent.length;
    const { recording, resumed } = await Recording.resume(this.recordingDir(), space.id, this.log, space.title, first, from, this.recordingOptions);
    t.recording = recording;
    let filled = 0;
    for (const buf of t.recent) {
      const n = recording.append(buf);
      if (n) filled++;
      this.metrics.recordingBytes.inc(n);
    }
    // the file goes further than this instance heard (it joined the cluster just before the owner died):
    // the space's next chunk is the one after the file's last, so the audio goes on rather than starting again at 0
    if (recording.lastSeq >= space.chunks) {
      this.dropWindow(t);
      space.acceptDelivered(recording.lastSeq);
    }
    // the space ended while the file was being taken (close() found no recording yet): published now
    if (space.state === 'ended') await recording.finish();
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

  /** Whether this instance's recording of the space failed to write, so it will never be published. */
  recordingLost(space: Space): boolean {
    return this.recordingOf(space.id)?.lost ?? false;
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

  /** The space ended: its recording is published (or, taken over while this instance stalled, left to the new owner's). */
  async close(space: Space): Promise<void> {
    const t = this.tracks.get(space.id);
    await t?.recording?.finish();
    // the new owner publishes it into the shared directory: served from there, as any other instance serves it
    if (t?.recording?.left) t.recording = null;
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
  deliver(space: Space, buf: Buffer, listeners: DenseSockets<Conn>): 'quota' | null {
    const h = peekAudioHeader(buf);
    if (!h || space.state !== 'live') return null;
    const gap = h.seq > space.chunks;
    if (!space.acceptDelivered(h.seq)) {
      this.metrics.audioChunksDropped.inc({ reason: 'duplicate' });
      return null;
    }
    const t = this.track(space.id);
    if (gap) this.dropWindow(t);
    const wasTruncated = t.recording?.truncated ?? true;
    this.metrics.recordingBytes.inc(t.recording?.append(buf) ?? 0);
    this.keep(t, buf);
    this.send(space, buf, h.seq, listeners);
    // the host is told once, when the quota stops this space's recording
    return !wasTruncated && t.recording!.truncated ? 'quota' : null;
  }

  /**
   * Adds a chunk to a track's live window: at most LIVE_WINDOW_CHUNKS, and the windows of all spaces
   * together within `liveWindowTotalBytes` — past it the growing window gives up its oldest chunks
   * (it keeps its newest one, so the total may pass the budget by one chunk per space).
   */
  private keep(t: Track, buf: Buffer): void {
    t.recent.push(buf);
    t.recentBytes += buf.length;
    this.windowBytes += buf.length;
    const budget = this.config.liveWindowTotalBytes;
    while (t.recent.length > LIVE_WINDOW_CHUNKS || (this.windowBytes > budget && t.recent.length > 1)) {
      const n = t.recent.shift()!.length;
      t.recentBytes -= n;
      this.windowBytes -= n;
    }
    this.metrics.liveWindowBytes.set(this.windowBytes);
  }

  /**
   * A text message for every listener of a space (a count, reactions), sent with the space's next chunk in
   * the same write: one system call per listener instead of two. Only while audio flows (a chunk fanned out
   * within the last `countIntervalMs`); false when it should be sent now. What no chunk took by the next
   * tick comes back from `takeCarried`.
   */
  carry(spaceId: string, data: Buffer): boolean {
    const t = this.tracks.get(spaceId);
    if (!t || this.clock.now() - t.lastAudioAt > this.config.countIntervalMs) return false;
    t.carried.push(data);
    return true;
  }

  /** The text messages still waiting for a chunk (audio stopped, or is held by a fault): the caller sends them. */
  takeCarried(spaceId: string): Buffer[] {
    const t = this.tracks.get(spaceId);
    if (!t || t.carried.length === 0) return [];
    const c = t.carried;
    t.carried = [];
    return c;
  }

  /**
   * The space ended: chunks held back for coalescing and writes not yet done go out before the listeners are
   * told (the recording and the live window have them already).
   */
  flush(space: Space, listeners: DenseSockets<Conn>): void {
    const t = this.tracks.get(space.id);
    if (t?.held.length) this.release(t, listeners, performance.now());
    this.writes.drain();
  }

  /**
   * One frame built per chunk. With `fanoutCoalesceChunks` k > 1 the frames of k chunks are held and go
   * out in one write per listener (fewer system calls, k − 1 chunk intervals more delay for the first),
   * or sooner: what is held goes out `fanoutCoalesceMaxHoldMs` after the first of it was held, so a host
   * that slows down or pauses never leaves its listeners more than that behind.
   */
  private fanOut(space: Space, buf: Buffer, seq: number, listeners: DenseSockets<Conn>): void {
    const t0 = performance.now();
    const frame = binaryFrame(buf);
    const t = this.track(space.id);
    t.lastAudioAt = this.clock.now();
    const k = this.config.fanoutCoalesceChunks;
    if (k <= 1) return this.write(t, listeners, frame, 1, t0, seq);
    t.held.push(frame);
    t.heldSeq = seq;
    if (t.held.length >= k) return this.release(t, listeners, t0);
    if (t.held.length === 1) this.holdAtMost(t, listeners);
  }

  /** Flushes what `t` holds once `fanoutCoalesceMaxHoldMs` of the app's clock has passed, unless it went out before. */
  private holdAtMost(t: Track, listeners: DenseSockets<Conn>): void {
    const timer = new AbortController();
    t.holdTimer = timer;
    void this.clock.sleep(this.config.fanoutCoalesceMaxHoldMs, timer.signal).then(() => {
      if (!timer.signal.aborted && t.holdTimer === timer && t.held.length) this.release(t, listeners, performance.now());
    });
  }

  /** Writes everything `t` holds in one write per listener and cancels its pending flush. */
  private release(t: Track, listeners: DenseSockets<Conn>, t0: number): void {
    const held = t.held;
    t.held = [];
    t.holdTimer?.abort();
    t.holdTimer = null;
    this.write(t, listeners, held.length === 1 ? held[0]! : Buffer.concat(held), held.length, t0, t.heldSeq);
  }

  /**
   * `data` (whole frames of `chunks` chunks, after the text the track carries) for every listener in the
   * room now, paced (`paced.ts`): writes for about `fanoutTurnMs` per event-loop turn, in order behind
   * earlier chunks. With nothing queued it starts at once from the room's own arrays; what is left for a
   * later turn goes from a copy of them (who was in when the chunk came).
   */
  private write(t: Track, listeners: DenseSockets<Conn>, data: Buffer, chunks: number, t0: number, seq: number): void {
    const text = t.carried;
    if (text.length > 0) t.carried = [];
    const frames = text.length > 0 ? Buffer.concat([...text.map(textFrame), data]) : data;
    this.writes.submit({ room: listeners, slots: listeners.slots, size: listeners.size, next: 0, data: frames, text, chunks, seq, t0, sent: 0, dropped: 0, direct: 0, partial: 0 });
  }

  /**
   * The hot path: a job's frames written to listeners [from, to) as raw socket writes; nothing allocated per
   * listener, and per listener only the room's typed arrays (by slot), the socket and its writable state are
   * read. The raw write is safe because ws never holds frames back here (no permessage-deflate, no Blob
   * sends: its sender writes through at once, so text messages and these frames reach the socket in the
   * order they were sent). A listener whose close frame went (`open`, cleared by `AudioSocket`) or whose
   * socket no longer takes writes (ended, destroyed) gets nothing. A listener whose socket has more than
   * `skipBufferedBytes` queued is skipped; one behind for `slowConsumerMs` is cut. One that does not get the
   * chunk still gets the carried text, through its bounded path. A socket with nothing queued is written
   * straight to its handle (`DirectWriter`: order holds, since the frame lands behind everything before it);
   * any other goes through `socket.write`, and the bytes a partial direct write left in libuv count as queued.
   */
  private writeRange(job: FanoutJob, from: number, to: number): void {
    const skip = this.config.skipBufferedBytes;
    const { room, slots, data, seq } = job;
    // read per range: a join between two turns may have grown them
    const open = room.open;
    const after = room.after;
    const behindSince = room.behindSince;
    const socketOf = room.socketsBySlot;
    const direct = this.direct;
    const partial0 = direct === null ? 0 : direct.partial;
    let sent = 0;
    let viaHandle = 0;
    let cut: Conn[] | null = null;
    for (let i = from; i < to; i++) {
      const slot = slots[i]!;
      // no data frame after a close frame (RFC 6455 §5.5.1), nor to one that left since the chunk came
      if (open[slot] === 0) continue;
      const socket = socketOf[slot]!;
      if (after[slot]! < seq && socket.writable) {
        const queued = socket.writableLength;
        // the common case, kept small: nothing queued, straight to the handle
        if (queued === 0 && direct !== null && direct.write(socket, data)) {
          if (behindSince[slot] !== 0) behindSince[slot] = 0;
          viaHandle++;
          continue;
        }
        // keeping up (a direct write's unsent rest counts as queued too): through Node's stream
        if (queued + this.queuedBeside(socket) <= skip) {
          if (behindSince[slot] !== 0) behindSince[slot] = 0;
          socket.write(data);
          sent++;
          continue;
        }
      }
      if (this.notWritten(job, slot, socket)) (cut ??= []).push(room.keyOf(slot)!);
    }
    job.sent += sent + viaHandle;
    job.direct += viaHandle;
    if (direct !== null) job.partial += direct.partial - partial0;
    if (cut) {
      for (const c of cut) {
        this.metrics.audioChunksDropped.inc({ reason: 'slow_consumer_closed' });
        // a listener this far behind cannot take a close frame either
        c.ws.terminate();
      }
    }
  }

  /**
   * A listener in `slot` that does not get the job's frames: one back from another instance that heard the
   * chunk there, one whose socket no longer takes writes (ws ended or destroyed it: the peer's end of stream,
   * a socket error), or one with more than `skipBufferedBytes` queued (dropped; true when it has been behind
   * for longer than `slowConsumerMs` and is to be cut). Whoever is still open gets the carried text.
   */
  private notWritten(job: FanoutJob, slot: number, socket: Duplex): boolean {
    const room = job.room;
    let cut = false;
    if (room.after[slot]! < job.seq) {
      if (!socket.writable) return false;
      job.dropped++;
      const now = this.clock.now();
      const since = room.behindSince[slot]!;
      if (since === 0) room.behindSince[slot] = now;
      else cut = now - since > this.config.slowConsumerMs;
    }
    for (const m of job.text) this.sendText(room.keyOf(slot)!, m);
    return cut;
  }

  /** A chunk is out to its whole room: sends and drops counted once, and the time it took (queueing included). */
  private finished(job: FanoutJob): void {
    if (job.sent) this.metrics.audioChunksSent.inc(job.sent * job.chunks);
    if (job.dropped) this.metrics.audioChunksDropped.inc({ reason: 'backpressure' }, job.dropped * job.chunks);
    if (job.direct > job.partial) this.metrics.fanoutWrites.inc({ path: 'direct' }, job.direct - job.partial);
    if (job.partial) this.metrics.fanoutWrites.inc({ path: 'direct_partial' }, job.partial);
    if (job.sent > job.direct) this.metrics.fanoutWrites.inc({ path: 'stream' }, job.sent - job.direct);
    this.metrics.fanoutDuration.observe((performance.now() - job.t0) / 1000);
  }
}
