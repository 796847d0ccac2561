import { createHash } from 'node:crypto';
import { createWriteStream, type WriteStream } from 'node:fs';
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { OggOpusWriter } from '../audio/index.js';
import { decodeAudioChunk } from '../protocol/index.js';

/**
 * A space's recording as a standard Ogg Opus file (RFC 7845) that browsers and players open: every
 * accepted chunk becomes one Ogg page holding its Opus frames, in order. Written to
 * `<id>.opus.partial` while live and renamed to `<id>.opus` when finished, so a reader never sees
 * half a file. finish() is idempotent and returns the same promise.
 */
export class Recording {
  private stream: WriteStream | null = null;
  private finishing: Promise<void> | null = null;
  private failed: Error | null = null;
  private readonly ogg: OggOpusWriter;
  chunks = 0;
  bytes = 0;
  ready = false;

  constructor(
    private readonly dir: string,
    readonly spaceId: string,
    private readonly log: Logger,
    title = 'Stampede space',
    /** Told once when the file write fails (a full or failing disk, or an injected disk fault). */
    private readonly onFailed: () => void = () => undefined,
  ) {
    // a stream serial number of its own per space, stable for the space
    const serial = createHash('sha256').update(spaceId).digest().readUInt32LE(0);
    this.ogg = new OggOpusWriter({ serial, vendor: 'stampede', tags: { TITLE: title } });
  }

  get path(): string {
    return join(this.dir, `${this.spaceId}.opus`);
  }

  private get partialPath(): string {
    return `${this.path}.partial`;
  }

  async open(): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    this.stream = createWriteStream(this.partialPath, { flags: 'w' });
    this.stream.on('error', (err) => this.fail(err));
    this.write(this.ogg.headers());
  }

  private write(bytes: Buffer): number {
    if (bytes.length === 0) return 0;
    this.stream!.write(bytes);
    this.bytes += bytes.length;
    return bytes.length;
  }

  /** Appends a chunk (already validated by the hub); returns the bytes written to the file. */
  append(chunk: Uint8Array): number {
    if (!this.stream || this.finishing || this.failed) return 0;
    const c = decodeAudioChunk(chunk);
    if (!c.ok) return 0;
    this.chunks++;
    return this.write(this.ogg.audio(c.chunk.frames));
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

  finish(): Promise<void> {
    this.finishing ??= (async () => {
      const s = this.stream;
      if (s && !this.failed) this.write(this.ogg.end());
      if (s) await new Promise<void>((resolve) => s.end(resolve));
      if (this.failed) {
        await rm(this.partialPath, { force: true });
        return;
      }
      if (!s) return;
      await rename(this.partialPath, this.path);
      const st = await stat(this.path);
      this.ready = true;
      this.log.info({ spaceId: this.spaceId, chunks: this.chunks, bytes: st.size }, 'recording published');
    })();
    return this.finishing;
  }
}
