import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // Two cores: more workers only add scheduling noise to millisecond timings.
    maxWorkers: 2,
    reporters: ['default'],
    projects: [
      {
        extends: true,
        // The tests beside the code: no built CLI, no dist/, so `npm run test:unit` starts at once.
        test: { name: 'unit', include: ['{protocol,lib,agent,server,client,cli,electron,renderer}/**/*.test.ts'] },
      },
      {
        extends: true,
        test: {
          name: 'integration',
          include: ['test/**/*.test.ts'],
          // Integration tests spawn the built CLI (dist/); build it once per run so it is never stale.
          globalSetup: ['test/global-setup.ts'],
        },
      },
    ],
  },
});
