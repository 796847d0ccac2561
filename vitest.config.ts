import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/setup/global.ts'],
    testTimeout: 30_000,
    hookTimeout: 120_000,
    // expect.poll waits for what a real process or socket will do; on a loaded two-core machine that can take
    // more than vitest's 1 s default. A poll that succeeds returns at once, so this costs passing tests nothing.
    expect: { poll: { timeout: 15_000 } },
    pool: 'forks',
    maxWorkers: 2,
  },
});
