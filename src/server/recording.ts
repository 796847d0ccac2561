import { createHash } from 'node:crypto';
import { createWriteStream, type WriteStream } from 'node:fs';
import { mkdir, open as openFile, readFile, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { oggPage, OggOpusWriter, readOggPages, readOggPrefix, type ReadPage } from '../audio/index.js';
import type { ByteQuota } from '../guard/index.js';
import { decodeAudioChunk } from '../protocol/index.js';

/** Who writes a recording, and what it may use. */
export interface RecordingOptions {
  /** Told once when the file write fails (a full or failing disk, or an injected disk fault). */
  onFailed?: () => void;
  /** The disk quota all recordings of this process share (docs/reliability.md #24); none by default. */
  quota?: ByteQuota | null;
  /** The instance writing it ('local' by default): its file while live is `<id>.<writer>.opus.partial`, its own. */
  writer?: string;
}

/**
 * A space's recording as a standard Ogg Opus file (RFC 7845) that browsers and players open: every
 * accepted chunk becomes one Ogg page holding its Opus frames, in order. Written to
 * `<id>.<writer>.opus.partial` while live and renamed to `<id>.opus` when finished, so a reader never
 * sees half a file. finish() is idempotent and returns the same promise.
 *
 * In a cluster the instance that owns the space writes it into a directory every instance shares. The
 * file says which chunk it starts at (the STAMPEDE_FIRST_SEQ comment), so an instance that takes a
 * space over continues it (`resume`): it moves the previous owner's file out of its name, keeps every
 * whole page, cuts a torn one, and goes on in a file of its own from the chunk after the last one
 * written. A previous owner that only stalled (it has not learnt of the takeover yet) writes on into
 * the file it has open, which no one reads any more, and when it finishes it finds its file gone and
 * leaves the recording to the new owner: no page of its after the takeover reaches the published file.
 */
export class Recording {
  private stream: WriteStream | null = null;
  private finishing: Promise<void> | null = null;
  private failed: Error | null = null;
  private ogg: OggOpusWriter;
  chunks = 0;
  bytes = 0;
  ready = false;
  /** Audio bytes this recording holds of the quota (given back if the recording is lost). */
  private quotaHeld = 0;
  /** Finished as a previous owner: another instance took the space over and publishes the recording. */
  left = false;
  /** The disk quota stopped this recording: it holds the whole chunks before that point only. */
  truncated = false;
  /** The sequence number of the last chunk in the file (firstSeq − 1 before the first). */
  lastSeq: number;
  /** Where the last audio page begins in the file (end-of-stream is marked on it in place), -1 before the first. */
  private lastPageAt = -1;
  private readonly onFailed: () => void;
  private readonly quota: ByteQuota | null;
  /** This writer's file while the space is live: no other instance writes into it. */
  private readonly partialPath: string;

  constructor(
    private readonly dir: string,
    readonly spaceId: string,
    private readonly log: Logger,
    private readonly title = 'Stampede space',
    private readonly firstSeq = 0,
    opts: RecordingOptions = {},
  ) {
    this.onFailed = opts.onFailed ?? (() => undefined);
    this.quota = opts.quota ?? null;
    this.partialPath = partialPath(dir, spaceId, opts.writer ?? 'local');
    this.ogg = this.writer();
    this.lastSeq = firstSeq - 1;
  }

  private writer(resumeAt?: { seq: number; granule: bigint; lastPackets?: Uint8Array[] }): OggOpusWriter {
    // a stream serial number of its own per space, stable for the space (a resumed file keeps it)
    const serial = createHash('sha256').update(this.spaceId).digest().readUInt32LE(0);
    return new OggOpusWriter({ serial, vendor: 'stampede', tags: { TITLE: this.title, STAMPEDE_FIRST_SEQ: String(this.firstSeq) }, ...(resumeAt ? { resumeAt } : {}) });
  }

  /**
   * Continues the file the previous owner (`from`) left as `<id>.<from>.opus.partial`. First the file is
   * moved out of its name (the fence: a previous owner that only stalled finds its file gone from then on,
   * and its appends go into a file no one reads); then its whole pages are copied into this writer's own
   * file (a torn last page is cut, an end-of-stream mark taken off) and the recording goes on there.
   * Without a usable file (not shared, or never begun) a new one starts at `firstSeq`; the result says
   * which, so the caller can log what was lost.
   */
  static async resume(dir: string, spaceId: string, log: Logger, title: string, firstSeq: number, from: string, opts: RecordingOptions = {}): Promise<{ recording: Recording; resumed: boolean }> {
    const theirs = partialPath(dir, spaceId, from);
    const taken = `${theirs}.taken-by-${opts.writer ?? 'local'}`;
    const moved = await rename(theirs, taken).then(
      () => true,
      () => false,
    );
    const file = moved ? await readFile(taken).catch(() => Buffer.alloc(0)) : Buffer.alloc(0);
    const { pages, bytes, lastAt } = readOggPrefix(file);
    const startsAt = pages.length >= 2 ? firstSeqOf(pages[1]!) : null;
    const recording = new Recording(dir, spaceId, log, title, startsAt ?? firstSeq, opts);
    if (startsAt === null) {
      await recording.open();
      if (moved) await rm(taken, { force: true });
      return { recording, resumed: false };
    }
    const prefix = file.subarray(0, bytes);
    const last = pages.at(-1)!;
    // the previous owner finished as it was taken over: its end-of-stream mark comes off, the stream goes on
    if (last.headerType & EOS) oggPage({ ...last, headerType: last.headerType & ~EOS }).copy(prefix, lastAt);
    const audio = pages.length > 2;
    recording.ogg = recording.writer({ seq: pages.length, granule: last.granule, ...(audio ? { lastPackets: last.packets } : {}) });
    recording.lastPageAt = audio ? lastAt : -1;
    recording.chunks = pages.length - 2;
    recording.lastSeq = startsAt + recording.chunks - 1;
    await recording.open(prefix);
    await rm(taken, { force: true });
    return { recording, resumed: true };
  }

  /** A recording another instance published into the shared directory, or null when there is none. */
  static async published(dir: string, spaceId: string, log: Logger): Promise<Recording | null> {
    const r = new Recording(dir, spaceId, log);
    const file = await readFile(r.path).catch(() => null);
    if (!file) return null;
    r.bytes = file.length;
    r.chunks = Math.max(0, readOggPages(file).length - 2);
    r.ready = true;
    return r;
  }

  get path(): string {
    return join(this.dir, `${this.spaceId}.opus`);
  }

  /** Creates this writer's file and begins it with the Ogg headers, or with the pages a previous owner left. */
  async open(prefix?: Buffer): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    const stream = (this.stream = createWriteStream(this.partialPath, { flags: 'w' }));
    stream.on('error', (err) => this.fail(err));
    this.write(prefix ?? this.ogg.headers());
    // the file exists once open() returns: a missing file then means another instance took it (finish)
    await new Promise<void>((resolve) => {
      stream.once('ready', resolve);
      stream.once('error', () => resolve());
    });
  }

  private write(bytes: Buffer): number {
    if (bytes.length === 0) return 0;
    this.stream!.write(bytes);
    this.bytes += bytes.length;
    return bytes.length;
  }

  /** Appends a chunk (already validated by the hub); returns the bytes written to the file. */
  append(chunk: Uint8Array): number {
    if (!this.stream || this.finishing || this.failed || this.truncated) return 0;
    const c = decodeAudioChunk(chunk);
    if (!c.ok || c.chunk.seq <= this.lastSeq) return 0;
    // the chunk's page is taken from the quota before it is built: a refused chunk leaves no gap in the pages
    const page = oggPageSize(c.chunk.frames);
    if (this.quota && !this.quota.take(page)) {
      this.truncated = true;
      this.log.warn({ spaceId: this.spaceId, quotaBytes: this.quota.limit, chunks: this.chunks }, 'recording stopped at the disk quota');
      return 0;
    }
    this.chunks++;
    this.lastSeq = c.chunk.seq;
    if (this.quota) this.quotaHeld += page;
    // written at once, never held back: the file holds every chunk appended, whatever happens to this process
    this.lastPageAt = this.bytes;
    return this.write(this.ogg.audio(c.chunk.frames));
  }

  /** A write failed while the space was live: this recording will never be published. */
  get lost(): boolean {
    return this.failed !== null;
  }

  /** A failed write: the recording stops here and will not be published (the partial file is removed). */
  private fail(err: Error): void {
    if (this.failed) return;
    this.failed = err;
    this.onFailed();
    this.log.error({ err, spaceId: this.spaceId }, 'recording write failed');
  }

  /** Fails the file write as a failing disk would (the fault injector): the same path as a real write error. */
  failWrite(reason: string): boolean {
    if (!this.stream || this.failed || this.finishing) return false;
    const err = Object.assign(new Error(`recording disk failed: ${reason}`), { code: 'EIO' });
    this.fail(err);
    // destroyed with the error, as a failed write destroys it: end() then calls back at once instead of waiting for a finish that never comes
    this.stream.destroy(err);
    return true;
  }

  private async writeAt(bytes: Buffer, at: number): Promise<void> {
    const fh = await openFile(this.partialPath, 'r+');
    try {
      await fh.write(bytes, 0, bytes.length, at);
    } finally {
      await fh.close();
    }
  }

  /** Stops writing and leaves the partial file as it is (every chunk appended is in it), for the instance that now owns the space. */
  async abandon(): Promise<void> {
    this.finishing ??= (async () => {
      const s = this.stream;
      if (s) await new Promise<void>((resolve) => s.end(resolve));
    })();
    await this.finishing;
  }

  /** This writer's file is gone from its name: an instance that took the space over moved it (`resume`). */
  private async takenOver(): Promise<boolean> {
    return (await stat(this.partialPath).catch(() => null)) === null;
  }

  /** Another instance continues the recording: nothing more here is ours to write, rename or count. */
  private leave(): void {
    this.left = true;
    this.stream?.destroy();
    this.quota?.release(this.quotaHeld);
    this.log.warn({ spaceId: this.spaceId, chunks: this.chunks }, 'recording left to the instance that took the space over');
  }

  finish(): Promise<void> {
    this.finishing ??= (async () => {
      const s = this.stream;
      // taken over while this instance stalled: our stream writes into a file no one reads any more
      if (s && !this.failed && (await this.takenOver())) return this.leave();
      const end = s && !this.failed ? this.ogg.end() : null;
      if (end && !end.replacesLast) this.write(end.page);
      if (s) await new Promise<void>((resolve) => s.end(resolve));
      // the last audio page again, marked end-of-stream, over the one written (same length); a file taken
      // over in the meantime is gone from its name (ENOENT), and the instance that took it goes on with it
      let gone = false;
      if (end?.replacesLast && !this.failed) await this.writeAt(end.page, this.lastPageAt).catch((err: NodeJS.ErrnoException) => (err.code === 'ENOENT' ? (gone = true) : this.fail(err)));
      if (this.failed) {
        await rm(this.partialPath, { force: true });
        this.quota?.release(this.quotaHeld);
        return;
      }
      if (!s) return;
      // the rename is the fence's other side: a file taken over between the check above and here is not there to publish
      const renamed = !gone && (await rename(this.partialPath, this.path).then(
        () => true,
        (err: NodeJS.ErrnoException) => (err.code === 'ENOENT' ? false : Promise.reject(err)),
      ));
      if (!renamed) return this.leave();
      const st = await stat(this.path);
      this.ready = true;
      this.log.info({ spaceId: this.spaceId, chunks: this.chunks, bytes: st.size }, 'recording published');
    })();
    return this.finishing;
  }
}

/** The Ogg page header flag of a stream's last page. */
const EOS = 0x04;

/** A writer's file while the space is live; it ends in `.opus.partial`, which the disk quota counts. */
function partialPath(dir: string, spaceId: string, writer: string): string {
  return join(dir, `${spaceId}.${writer}.opus.partial`);
}

/** The bytes of the Ogg page holding these packets: a 27-byte header, a lacing table, the data. */
function oggPageSize(packets: readonly Uint8Array[]): number {
  let n = 27;
  for (const p of packets) n += Math.floor(p.length / 255) + 1 + p.length;
  return n;
}

/** The chunk a recording starts at, from its OpusTags page; null when the page is not one of ours. */
function firstSeqOf(tags: ReadPage): number | null {
  const p = tags.packets[0];
  if (!p) return null;
  const m = /STAMPEDE_FIRST_SEQ=(\d{1,10})/.exec(Buffer.from(p).toString('latin1'));
  return m && Buffer.from(p).toString('latin1', 0, 8) === 'OpusTags' ? Number(m[1]) : null;
}
