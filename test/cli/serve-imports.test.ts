import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { useTempDir } from '../helpers/tmp.js';

/** A preload that says, as the process exits, how many of ioredis's files were loaded. */
const COUNT_IOREDIS = `import { createRequire } from 'node:module';
const require = createRequire(import.meta.url);
process.on('exit', () => {
  const n = Object.keys(require.cache).filter((k) => k.includes('/node_modules/ioredis/')).length;
  process.stderr.write('ioredis files loaded: ' + n + '\\n');
});
`;

describe('stampede serve start-up', () => {
  const tempDir = useTempDir('stampede-imports-');

  it('without --redis never loads ioredis: the Redis client is imported only when a Redis URL is configured', async () => {
    const preload = join(tempDir(), 'count-ioredis.mjs');
    await writeFile(preload, COUNT_IOREDIS);
    const r = runCli(['serve', '--port', '0', '--no-demo', '--log-level', 'warn'], { NODE_OPTIONS: `--import=${preload}`, STAMPEDE_OPERATOR_TOKEN: 'imports-test-operator-token-0123' });
    await r.waitFor(/listening on http:/);
    r.child.kill('SIGTERM');
    expect((await r.exited).code).toBe(0);
    expect(r.stderr()).toMatch(/ioredis files loaded: 0\n/);
  });
});
