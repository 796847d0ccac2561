import { mkdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

/** Where browser tests save screenshots for a person to look at (git-ignored, kept after the run). */
export const ARTIFACTS = fileURLToPath(new URL('../../test-artifacts/', import.meta.url));

export async function artifactPath(name: string): Promise<string> {
  await mkdir(ARTIFACTS, { recursive: true });
  return `${ARTIFACTS}${name}`;
}
