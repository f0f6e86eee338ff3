import { configDefaults, defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['apps/*/src/**/*.test.ts', 'packages/*/src/**/*.test.ts', 'test/**/*.test.ts'],
    // Tests that need a loopback-only network namespace run with `npm run test:netns`;
    // long measurements of throughput run alone afterwards (vitest.long.config.ts), so a
    // busy machine running other files in parallel does not distort them.
    exclude: [...configDefaults.exclude, '**/*.netns.test.ts', '**/*.long.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: 'forks',
    setupFiles: ['test/helpers/undici-dispatcher.ts'],
    // CI asks for a JSON report too, to print one closing count for all runs.
    reporters: process.env.CUTOUT_TEST_REPORT_DIR
      ? ['default', ['json', { outputFile: `${process.env.CUTOUT_TEST_REPORT_DIR}/main.json` }]]
      : ['default'],
    maxWorkers: 2,
  },
});
