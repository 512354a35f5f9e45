import type { Command } from 'commander';
import { migrate } from '../../db/index.ts';
import { createLogger } from '../../logging/index.ts';
import { Worker } from '../../worker/index.ts';
import { configFrom, runCommand, withConfigOption } from '../shared.ts';

export default function register(program: Command): void {
  withConfigOption(program.command('worker'))
    .description('join the consumer group and decide remediation requests until SIGTERM')
    .option('--migrate', 'apply pending migrations before starting')
    .action((options: { config?: string; migrate?: boolean }) =>
      runCommand(async () => {
        const config = configFrom(options);
        const log = createLogger();
        if (options.migrate) await migrate(config.databaseUrl, (line) => log.info(line));
        const worker = await new Worker(config, { logger: log }).start();
        await new Promise<void>((resolve) => {
          const stop = (signal: string) => {
            log.info({ signal }, 'draining');
            void worker.stop().then(resolve);
          };
          process.once('SIGTERM', () => stop('SIGTERM'));
          process.once('SIGINT', () => stop('SIGINT'));
        });
      }),
    );
}
