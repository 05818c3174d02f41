import { defineConfig } from 'vitest/config';

/**
 * Tests that compare frame rates before and during a fault: they run last, alone, so other test
 * files sharing the CPU cannot halve one window and not the other.
 */
const ALONE = 'test/server/remote/workerQuarantine.test.ts';

export default defineConfig({
  test: {
    testTimeout: 60_000,
    pool: 'forks',
    reporters: ['default', './test/support/summaryLineReporter.ts'],
    // The browser test runs after the rest, alone: headless Chromium's software WebGL needs the CPU.
    projects: [
      {
        extends: true,
        test: {
          name: 'node',
          include: ['test/**/*.test.ts'],
          exclude: ['test/bench/**', 'test/e2e/**', ALONE, 'node_modules/**'],
        },
      },
      {
        extends: true,
        test: { name: 'e2e', include: ['test/e2e/**/*.test.ts'], sequence: { groupOrder: 1 } },
      },
      {
        extends: true,
        test: { name: 'alone', include: [ALONE], sequence: { groupOrder: 2 } },
      },
    ],
  },
});
