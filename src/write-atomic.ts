import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import writeFileAtomic from 'write-file-atomic';

/**
 * The one way Stampede writes a whole file: its folder made if missing, then npm's `write-file-atomic`
 * (a uniquely named temporary file beside it, flushed, renamed over the target; removed again on an
 * error or when the process exits first). A reader — a person, Prometheus watching a targets file, a
 * browser reloading a report — sees the old file or the new one, never half of either.
 */
export async function writeAtomic(path: string, text: string | Buffer): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  await writeFileAtomic(path, text);
}
