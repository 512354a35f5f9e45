import { Option, type Command } from 'commander';
import type { ServiceStatus } from '../../stack/index.ts';
import { printJson, renderTable, runCommand } from '../../../src/cli/index.ts';

/** Progress goes to stderr, so stdout stays machine-readable (`eval "$(arbiter stack up)"`). */
export const progressToStderr = (line: string): void => {
  process.stderr.write(`[stack] ${line}\n`);
};

export default function register(program: Command): void {
  const stack = program
    .command('stack')
    .description('local Kafka, schema registry and PostgreSQL on loopback (no Docker needed)');

  stack
    .command('up')
    .description('start whatever is not already reachable; prints the endpoints as environment variables')
    .addOption(
      new Option('--runtime <runtime>', 'local processes, Docker containers, or auto: local wherever the jars path works')
        .choices(['local', 'docker', 'auto'])
    )
    .action((options: { runtime?: 'local' | 'docker' | 'auto' }) =>
      runCommand(async () => {
        const { stackUp } = await import('../../stack/index.ts');
        const startedAt = Date.now();
        const endpoints = await stackUp({ log: progressToStderr, ...(options.runtime === undefined ? {} : { runtime: options.runtime }) });
        const started = endpoints.started.length > 0 ? `started ${endpoints.started.join(', ')}` : 'all reused';
        progressToStderr(`up in ${((Date.now() - startedAt) / 1000).toFixed(1)} s (${started})`);
        process.stdout.write(
          `KAFKA_BROKERS=${endpoints.kafkaBrokers.join(',')}\n` +
            `SCHEMA_REGISTRY_URL=${endpoints.schemaRegistryUrl}\n` +
            `DATABASE_URL=${endpoints.databaseUrl}\n`,
        );
      }),
    );

  stack
    .command('down')
    .description('stop what `stack up` started (nothing else)')
    .action(() =>
      runCommand(async () => {
        const { stackDown } = await import('../../stack/index.ts');
        const stopped = await stackDown({ log: progressToStderr });
        progressToStderr(stopped.length > 0 ? `stopped ${stopped.join(', ')}` : 'nothing started by stack up was running');
      }),
    );

  stack
    .command('restart')
    .description('stop a service `stack up` started and start it again on its data (Kafka: topics and offsets kept)')
    .argument('<service>', 'kafka or registry')
    .option('--wipe', 'Kafka only: start a fresh cluster instead of keeping the data')
    .action((service: string, options: { wipe?: boolean }) =>
      runCommand(async () => {
        const { restartKafka, restartRegistry } = await import('../../stack/index.ts');
        const which = controllable(service);
        const result =
          which === 'kafka'
            ? await restartKafka({ keepData: options.wipe !== true, log: progressToStderr })
            : await restartRegistry({ log: progressToStderr });
        progressToStderr(`${which}: stopped in ${result.stopMs} ms, healthy ${result.startMs} ms after the new start`);
      }),
    );

  for (const [verb, what] of [
    ['pause', 'freeze a service `stack up` started (SIGSTOP): its port stays open, it answers nothing'],
    ['resume', 'continue a paused service (SIGCONT)'],
  ] as const) {
    stack
      .command(verb)
      .description(what)
      .argument('<service>', 'kafka or registry')
      .action((service: string) =>
        runCommand(async () => {
          const { pauseService, resumeService } = await import('../../stack/index.ts');
          (verb === 'pause' ? pauseService : resumeService)(controllable(service), { log: progressToStderr });
        }),
      );
  }

  stack
    .command('status')
    .description('is each service reachable, and did `stack up` start it; exits 1 when one is not reachable')
    .option('--json', 'print JSON')
    .action((options: { json?: boolean }) =>
      runCommand(async () => {
        const { redactPassword, stackStatus } = await import('../../stack/index.ts');
        const services = (await stackStatus()).map((status) =>
          status.service === 'postgres' ? { ...status, address: redactPassword(status.address) } : status,
        );
        if (options.json === true) printJson(services);
        else process.stdout.write(`${statusTable(services)}\n`);
        return services.every((status) => status.reachable) ? 0 : 1;
      }),
    );
}

function controllable(service: string): 'kafka' | 'registry' {
  if (service === 'kafka' || service === 'registry') return service;
  throw new Error(`only kafka and the registry can be restarted or paused, not "${service}" (PostgreSQL is not the stack's to restart)`);
}

function statusTable(services: ServiceStatus[]): string {
  const rows = services.map((status) => {
    const owner = status.pid !== undefined ? `pid ${status.pid}` : (status.containerId?.slice(0, 12) ?? '-');
    const reachable = status.reachable ? 'yes' : `no: ${status.problem ?? 'unknown'}`;
    return [status.service, reachable, status.address, owner, status.logFile];
  });
  return renderTable(['service', 'reachable', 'address', 'started by stack up', 'log'], rows);
}
