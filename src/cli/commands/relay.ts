import type { Command } from 'commander';
import { configFrom, runCommand, withConfigOption } from '../shared.ts';

export default function register(program: Command): void {
  withConfigOption(program.command('relay'))
    .description('run the plan relay alone (workers run one too unless plans.relay is false): plan commands in, step requests and plan events out')
    .action((options: { config?: string }) =>
      runCommand(async () => {
        const config = await configFrom(options);
        const [{ createLogger }, { startRelayProcess }] = await Promise.all([import('../../logging/index.ts'), import('../../plans/relay-process.ts')]);
        const log = createLogger({ name: 'arbiter-relay', secretParams: Object.values(config.actions).flatMap((a) => a.secretParams) });
        const relay = await startRelayProcess(config, log);
        await new Promise<void>((resolve) => {
          const onSignal = () => void relay.stop().then(resolve);
          process.once('SIGTERM', onSignal);
          process.once('SIGINT', onSignal);
        });
      }),
    );
}
