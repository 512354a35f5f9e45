import { spawn } from 'node:child_process';
import { constants } from 'node:os';
import type { Command } from 'commander';
import { errorMessage } from '../../../src/cli/index.ts';
import type { StackEndpoints } from '../../stack/index.ts';
import { progressToStderr } from './stack.ts';

export default function register(program: Command): void {
  program
    .command('test')
    .description('bring the stack up (starting only what is missing), run vitest against it, stop what was started')
    .argument('[vitest-args...]', 'passed to `vitest run` as they are')
    .allowUnknownOption()
    .passThroughOptions()
    .helpOption(false)
    .action(async (vitestArgs: string[]) => {
      const { stackDown, stackUp } = await import('../../stack/index.ts');
      let endpoints: StackEndpoints;
      try {
        endpoints = await stackUp({ log: progressToStderr });
      } catch (error) {
        process.stderr.write(`${errorMessage(error)}\n`);
        process.exitCode = 1;
        return;
      }
      try {
        if (vitestArgs.length) {
          process.exitCode = await runVitest(vitestArgs, endpoints);
        } else {
          // The whole suite: the fault tests run in a vitest of their own. Their global setup points
          // the environment at a private broker and registry, which must not leak into the unit and
          // integration projects (global setups of one vitest run share one process).
          const shared = await runVitest(['--project', 'unit', '--project', 'integration'], endpoints);
          const faults = await runVitest(['--project', 'faults'], endpoints);
          process.exitCode = shared || faults;
        }
      } finally {
        if (endpoints.started.length > 0) {
          await stackDown({ services: endpoints.started, log: progressToStderr }).catch((error: unknown) => {
            process.stderr.write(`could not stop ${endpoints.started.join(', ')}: ${errorMessage(error)}\n`);
            process.exitCode ||= 1;
          });
        }
      }
    });
}

function runVitest(args: string[], endpoints: StackEndpoints): Promise<number> {
  const child = spawn('npx', ['vitest', 'run', ...args], {
    stdio: 'inherit',
    env: {
      ...process.env,
      KAFKA_BROKERS: endpoints.kafkaBrokers.join(','),
      SCHEMA_REGISTRY_URL: endpoints.schemaRegistryUrl,
      DATABASE_URL: endpoints.databaseUrl,
    },
  });
  // Ctrl-C reaches vitest through the terminal's process group; we must outlive it to stop
  // what we started. SIGTERM comes to us alone, so it is passed on.
  const ignoreInterrupt = (): void => undefined;
  const forwardTerminate = (): void => {
    child.kill('SIGTERM');
  };
  process.on('SIGINT', ignoreInterrupt);
  process.on('SIGTERM', forwardTerminate);
  return new Promise((resolve) => {
    const finish = (code: number): void => {
      process.off('SIGINT', ignoreInterrupt);
      process.off('SIGTERM', forwardTerminate);
      resolve(code);
    };
    child.once('error', (error) => {
      process.stderr.write(`could not run vitest: ${errorMessage(error)}\n`);
      finish(1);
    });
    child.once('exit', (code, signal) => {
      finish(code ?? 128 + (signal === null ? 1 : constants.signals[signal]));
    });
  });
}
