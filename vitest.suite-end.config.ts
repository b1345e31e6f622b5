import { defineConfig } from 'vitest/config';

// Checks that read what the whole suite left behind (`make test` runs them after `vitest run`).
export default defineConfig({
  test: {
    include: ['test/suite-end/**/*.test.ts'],
    reporters: ['default'],
  },
});
