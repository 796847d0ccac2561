import { createWriteStream, type WriteStream } from 'node:fs';
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';

/**
 * A space's recording: every accepted chunk, in order, each prefixed with its u32 BE length. Written
 * to `<id>.rec.partial` while live and renamed to `<id>.rec` when finished, so a reader never sees
 * half a file. finish() is idempotent and returns the same promise.
 */
export class Recording {
  private stream: WriteStream | null = null;
  private finishing: Promise<void> | null = null;
  private failed: Error | null = null;
  chunks = 0;
  bytes = 0;
  ready = false;

  constructor(
    private readonly dir: string,
    readonly spaceId: string,
    private readonly log: Logger,
  ) {}

  get path(): string {
    return join(this.dir, `${this.spaceId}.rec`);
  }

  private get partialPath(): string {
    return `${this.path}.partial`;
  }

  async open(): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    this.stream = createWriteStream(this.partialPath, { flags: 'w' });
    this.stream.on('error', (err) => {
      this.failed = err;
      this.log.error({ err, spaceId: this.spaceId }, 'recording write failed');
    });
  }

  append(chunk: Uint8Array): void {
    if (!this.stream || this.finishing || this.failed) return;
    const len = Buffer.allocUnsafe(4);
    len.writeUInt32BE(chunk.length, 0);
    this.stream.write(len);
    this.stream.write(chunk);
    this.chunks++;
    this.bytes += 4 + chunk.length;
  }

  finish(): Promise<void> {
    this.finishing ??= (async () => {
      const s = this.stream;
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
