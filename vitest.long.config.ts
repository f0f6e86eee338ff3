import { defineConfig } from 'vitest/config';

// Tests that measure sustained throughput (rate discovery): one file at a time, with the
// machine to themselves. `npm test` runs them after the rest of the suite.
export default defineConfig({
  test: {
    include: ['test/**/*.long.test.ts'],
    testTimeout: 300_000,
    hookTimeout: 60_000,
    pool: 'forks',
    setupFiles: ['test/helpers/undici-dispatcher.ts'],
    // CI asks for a JSON report too, to print one closing count for all runs.
    reporters: process.env.CUTOUT_TEST_REPORT_DIR
      ? ['default', ['json', { outputFile: `${process.env.CUTOUT_TEST_REPORT_DIR}/long.json` }]]
      : ['default'],
    maxWorkers: 1,
    fileParallelism: false,
  },
});
