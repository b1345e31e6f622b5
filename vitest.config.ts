import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Read what the whole suite left behind: `make test` runs them after it (vitest.suite-end.config.ts).
    exclude: ['test/suite-end/**', '**/node_modules/**'],
    globalSetup: ['test/setup/services.ts'],
    pool: 'forks',
    // Two cores: two test files at a time keeps Temporal workers, Kafka and Postgres responsive.
    maxWorkers: 2,
    testTimeout: 60_000,
    hookTimeout: 120_000,
    reporters: ['default'],
  },
});
