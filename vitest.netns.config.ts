import { defineConfig } from 'vitest/config';

// Tests that hand real private and public addresses to network code. Run them with
// `bash scripts/test-netns.sh`, which starts vitest inside a loopback-only network namespace.
export default defineConfig({
  test: {
    include: ['apps/*/src/**/*.netns.test.ts', 'packages/*/src/**/*.netns.test.ts', 'test/**/*.netns.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: 'forks',
    setupFiles: ['test/helpers/undici-dispatcher.ts'],
    maxWorkers: 2,
  },
});
