import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // Once per run, before any project: tests start workers and CLI calls from dist/.
    globalSetup: ['test/support/build-first.ts'],
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
          environment: 'node',
        },
      },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          environment: 'node',
          // Real Kafka, registry and Postgres: generous timeouts, and files one at a time on 2 cores.
          testTimeout: 120_000,
          hookTimeout: 120_000,
          pool: 'forks',
          poolOptions: { forks: { singleFork: true } },
          globalSetup: ['test/integration/global-setup.ts'],
        },
      },
    ],
  },
});
