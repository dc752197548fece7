import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['{protocol,lib,agent,server,cli,electron,renderer,test}/**/*.test.ts'],
    // Integration tests spawn the built CLI (dist/); build it once per run so it is never stale.
    globalSetup: ['test/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // Two cores: more workers only add scheduling noise to millisecond timings.
    maxWorkers: 2,
    reporters: ['default'],
  },
});
