import { defineConfig } from 'vitest/config';

const NETWORK_NAMESPACE_TESTS = ['test/tunnel-address-change.test.ts', 'test/tunnel-direct.test.ts'];

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
          exclude: NETWORK_NAMESPACE_TESTS,
          // Integration tests spawn the built CLI (dist/); build it once per run so it is never stale.
          globalSetup: ['test/global-setup.ts'],
        },
      },
      {
        extends: true,
        test: {
          name: 'netns',
          // These tests give this machine a veth interface for a farm PC in its own network namespace. Every
          // agent running meanwhile would see its addresses change and reconnect its tunnel, so they run
          // alone, one at a time, after everything else (a later group order).
          include: NETWORK_NAMESPACE_TESTS,
          maxWorkers: 1,
          sequence: { groupOrder: 1 },
          globalSetup: ['test/global-setup.ts'],
        },
      },
    ],
  },
});
