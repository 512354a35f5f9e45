import type { Command } from 'commander';
import { configFrom, printJson, runCommand, withConfigOption } from '../shared.ts';

export default function register(program: Command): void {
  withConfigOption(program.command('migrate'))
    .description('create the database if missing and apply pending SQL migrations (a no-op when current)')
    .option('--json', 'print the result as JSON')
    .action((options: { config?: string; json?: boolean }) =>
      runCommand(async () => {
        const config = await configFrom(options);
        const { migrate } = await import('../../db/index.ts');
        const result = await migrate(config.databaseUrl, (line) => process.stderr.write(`${line}\n`), {
          analystPassword: config.audit.analystPassword,
        });
        if (options.json) printJson(result);
        else {
          if (result.createdDatabase) console.log('created the database');
          console.log(result.applied.length ? `applied: ${result.applied.join(', ')}` : 'already current');
          console.log(`role arbiter_analyst: ${result.analystLogin === 'enabled' ? 'LOGIN with the configured password' : 'NOLOGIN (no audit.analystPassword)'}`);
        }
      }),
    );
}
