import type { Command } from 'commander';
import { kafkajsPatches } from '../kafkajs-setup.ts';
import { configFrom, runCommand, withConfigOption } from '../shared.ts';

export default function register(program: Command): void {
  withConfigOption(program.command('worker'))
    .description('join the consumer group and decide remediation requests until SIGTERM')
    .option('--migrate', 'apply pending migrations before starting')
    .action((options: { config?: string; migrate?: boolean }) =>
      runCommand(async () => {
        const config = await configFrom(options);
        const [{ migrate }, { createLogger }, { Worker, applyHeapPolicy, WORKER_MALLOC_ENV, mallocSettingsMissing, WORKER_SEMI_SPACE_FLAG, semiSpaceFlagMissing }] = await Promise.all([
          import('../../db/index.ts'),
          import('../../logging/index.ts'),
          import('../../worker/index.ts'),
        ]);
        const log = createLogger({ secretParams: Object.values(config.actions).flatMap((a) => a.secretParams) });
        if (applyHeapPolicy(config.worker.heapGrowingPercent)) log.debug({ heapGrowingPercent: config.worker.heapGrowingPercent }, 'V8 heap growth set');
        // Another kafkajs than 2.2.4 runs as shipped, slower: say so once rather than silently.
        if (Object.values(kafkajsPatches).some((p) => p !== 'installed')) log.warn({ kafkajsPatches }, 'kafkajs runs without Arbiter’s replacements (see src/contract/kafkajs-patches.ts)');
        else log.debug({ kafkajsPatches }, 'kafkajs replacements installed');
        const mallocMissing = mallocSettingsMissing();
        if (mallocMissing.length) {
          const settings = mallocMissing.map((name) => `${name}=${WORKER_MALLOC_ENV[name]}`).join(' ');
          log.info({ settings }, `glibc malloc as it comes: set ${settings} in the worker's environment for ~20-30 MiB less peak memory under load (the image does; docs/OPERATIONS.md)`);
        }
        if (semiSpaceFlagMissing()) {
          log.info({ flag: WORKER_SEMI_SPACE_FLAG }, `V8's young generation as Node sizes it: start the worker with ${WORKER_SEMI_SPACE_FLAG} (in NODE_OPTIONS) for ~20 MiB less peak memory under load (the image does; docs/OPERATIONS.md)`);
        }
        if (options.migrate) await migrate(config.databaseUrl, (line) => log.info(line), { analystPassword: config.audit.analystPassword });
        const worker = await new Worker(config, { logger: log }).start();
        await new Promise<void>((resolve) => {
          let signals = 0;
          const onSignal = (signal: NodeJS.Signals) => {
            signals++;
            if (signals > 1) {
              // The operator insists: exit now. Postgres holds every decision; the next owner
              // recovers whatever was running (a lock left behind expires with its TTL).
              log.warn({ signal }, 'second signal: exiting at once');
              process.exit(128 + (signal === 'SIGINT' ? 2 : 15));
            }
            log.info({ signal }, 'draining (send the signal again to exit at once)');
            void worker.stop().then(resolve);
          };
          process.on('SIGTERM', onSignal);
          process.on('SIGINT', onSignal);
        });
      }),
    );
}
