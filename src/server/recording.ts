import { createHash } from 'node:crypto';
import { createWriteStream, type WriteStream } from 'node:fs';
import { mkdir, open as openFile, readFile, rename, rm, stat, truncate } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { OggOpusWriter, readOggPages, readOggPrefix, type ReadPage } from '../audio/index.js';
import type { ByteQuota } from '../guard/index.js';
import { decodeAudioChunk } from '../protocol/index.js';

/**
 * A space's recording as a standard Ogg Opus file (RFC 7845) that browsers and players open: every
 * accepted chunk becomes one Ogg page holding its Opus frames, in order. Written to
 * `<id>.opus.partial` while live and renamed to `<id>.opus` when finished, so a reader never sees
 * half a file. finish() is idempotent and returns the same promise.
 *
 * In a cluster the instance that owns the space writes it into a directory every instance shares. The
 * file says which chunk it starts at (the STAMPEDE_FIRST_SEQ comment), so an instance that takes a
 * space over from a dead owner resumes the same file: it keeps every whole page, cuts a torn one, and
 * appends from the chunk after the last one written (`resume`).
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
  /** The disk quota stopped this recording: it holds the whole chunks before that point only. */
  truncated = false;
  /** The sequence number of the last chunk in the file (firstSeq − 1 before the first). */
  lastSeq: number;
  /** Where the last audio page begins in the file (end-of-stream is marked on it in place), -1 before the first. */
  private lastPageAt = -1;

  constructor(
    private readonly dir: string,
    readonly spaceId: string,
    private readonly log: Logger,
    private readonly title = 'Stampede space',
    private readonly firstSeq = 0,
    /** Told once when the file write fails (a full or failing disk, or an injected disk fault). */
    private readonly onFailed: () => void = () => undefined,
    /** The disk quota all recordings of this process share (docs/reliability.md #24); none by default. */
    private readonly quota: ByteQuota | null = null,
  ) {
    this.ogg = this.writer();
    this.lastSeq = firstSeq - 1;
  }

  private writer(resumeAt?: { seq: number; granule: bigint; lastPackets?: Uint8Array[] }): OggOpusWriter {
    // a stream serial number of its own per space, stable for the space (a resumed file keeps it)
    const serial = createHash('sha256').update(this.spaceId).digest().readUInt32LE(0);
    return new OggOpusWriter({ serial, vendor: 'stampede', tags: { TITLE: this.title, STAMPEDE_FIRST_SEQ: String(this.firstSeq) }, ...(resumeAt ? { resumeAt } : {}) });
  }

  /**
   * Continues the file a dead owner left as `<id>.opus.partial`: whole pages are kept, a torn last
   * page is cut. Without a usable file (not shared, or never begun) a new one starts at `firstSeq`;
   * the result says which, so the caller can log what was lost.
   */
  static async resume(dir: string, spaceId: string, log: Logger, title: string, firstSeq: number, onFailed?: () => void, quota: ByteQuota | null = null): Promise<{ recording: Recording; resumed: boolean }> {
    const partial = join(dir, `${spaceId}.opus.partial`);
    const { pages, bytes, lastAt } = readOggPrefix(await readFile(partial).catch(() => Buffer.alloc(0)));
    const startsAt = pages.length >= 2 ? firstSeqOf(pages[1]!) : null;
    if (startsAt === null) {
      const recording = new Recording(dir, spaceId, log, title, firstSeq, onFailed, quota);
      await recording.open();
      return { recording, resumed: false };
    }
    const recording = new Recording(dir, spaceId, log, title, startsAt, onFailed, quota);
    await truncate(partial, bytes);
    const audio = pages.length > 2;
    recording.ogg = recording.writer({ seq: pages.length, granule: pages.at(-1)!.granule, ...(audio ? { lastPackets: pages.at(-1)!.packets } : {}) });
    recording.lastPageAt = audio ? lastAt : -1;
    recording.chunks = pages.length - 2;
    recording.lastSeq = startsAt + recording.chunks - 1;
    recording.bytes = bytes;
    await recording.open(true);
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

  private get partialPath(): string {
    return `${this.path}.partial`;
  }

  async open(append = false): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    this.stream = createWriteStream(this.partialPath, { flags: append ? 'a' : 'w' });
    this.stream.on('error', (err) => this.fail(err));
    if (!append) this.write(this.ogg.headers());
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

  /** The partial file is gone and the recording is published: the instance that took the space over finished it. */
  private async publishedByAnother(): Promise<boolean> {
    const [partial, published] = await Promise.all([stat(this.partialPath).catch(() => null), stat(this.path).catch(() => null)]);
    return partial === null && published !== null;
  }

  finish(): Promise<void> {
    this.finishing ??= (async () => {
      const s = this.stream;
      if (s && !this.failed && (await this.publishedByAnother())) {
        // the partial file is gone: an instance that took the space over while this one stalled has
        // published it (our stream now points into its file). Nothing more here is ours to write or rename.
        s.destroy();
        this.quota?.release(this.quotaHeld);
        this.log.warn({ spaceId: this.spaceId, chunks: this.chunks }, 'recording left to the instance that took the space over');
        return;
      }
      const end = s && !this.failed ? this.ogg.end() : null;
      if (end && !end.replacesLast) this.write(end.page);
      if (s) await new Promise<void>((resolve) => s.end(resolve));
      // the last audio page again, marked end-of-stream, over the one written (same length)
      if (end?.replacesLast && !this.failed) await this.writeAt(end.page, this.lastPageAt).catch((err: Error) => this.fail(err));
      if (this.failed) {
        await rm(this.partialPath, { force: true });
        this.quota?.release(this.quotaHeld);
        return;
      }
      if (!s) return;
      const renamed = await rename(this.partialPath, this.path).then(
        () => true,
        // the instance that took the space over published it between the check above and here
        async (err: NodeJS.ErrnoException) => (err.code === 'ENOENT' && (await this.publishedByAnother()) ? false : Promise.reject(err)),
      );
      if (!renamed) {
        this.quota?.release(this.quotaHeld);
        this.log.warn({ spaceId: this.spaceId, chunks: this.chunks }, 'recording left to the instance that took the space over');
        return;
      }
      const st = await stat(this.path);
      this.ready = true;
      this.log.info({ spaceId: this.spaceId, chunks: this.chunks, bytes: st.size }, 'recording published');
    })();
    return this.finishing;
  }
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
