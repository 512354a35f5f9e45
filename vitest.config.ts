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
      {
        test: {
          name: 'faults',
          include: ['test/faults/**/*.test.ts'],
          environment: 'node',
          // Storms over real worker processes while the broker or registry misbehaves: minutes, one file at a time.
          testTimeout: 300_000,
          hookTimeout: 180_000,
          pool: 'forks',
          poolOptions: { forks: { singleFork: true } },
          // A private Kafka and registry (own ports and run dir): restarting them never disturbs the shared ones.
          globalSetup: ['test/faults/global-setup.ts'],
        },
      },
    ],
  },
});
