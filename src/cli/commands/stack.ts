import Table from 'cli-table3';
import type { Command } from 'commander';
import { errorMessage } from '../../contract/errors.ts';
import { redactPassword, stackDown, stackStatus, stackUp, type ServiceStatus } from '../../stack/index.ts';

/** Progress goes to stderr, so stdout stays machine-readable (`eval "$(arbiter stack up)"`). */
export const progressToStderr = (line: string): void => {
  process.stderr.write(`[stack] ${line}\n`);
};

export default function register(program: Command): void {
  const stack = program
    .command('stack')
    .description('local Kafka, schema registry and PostgreSQL on loopback, without Docker');

  stack
    .command('up')
    .description('start whatever is not already reachable; prints the endpoints as environment variables')
    .action(() =>
      reportFailure(async () => {
        const startedAt = Date.now();
        const endpoints = await stackUp({ log: progressToStderr });
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
      reportFailure(async () => {
        const stopped = await stackDown({ log: progressToStderr });
        progressToStderr(stopped.length > 0 ? `stopped ${stopped.join(', ')}` : 'nothing started by stack up was running');
      }),
    );

  stack
    .command('status')
    .description('is each service reachable, and did `stack up` start it')
    .option('--json', 'print JSON')
    .action((options: { json?: boolean }) =>
      reportFailure(async () => {
        const services = (await stackStatus()).map((status) =>
          status.service === 'postgres' ? { ...status, address: redactPassword(status.address) } : status,
        );
        process.stdout.write(options.json === true ? `${JSON.stringify(services, null, 2)}\n` : renderTable(services));
        if (services.some((status) => !status.reachable)) process.exitCode = 1;
      }),
    );
}

function renderTable(services: ServiceStatus[]): string {
  const table = new Table({ head: ['service', 'reachable', 'address', 'started by stack up', 'log'] });
  for (const status of services) {
    const owner = status.pid !== undefined ? `pid ${status.pid}` : status.containerId?.slice(0, 12) ?? '-';
    table.push([status.service, status.reachable ? 'yes' : `no: ${status.problem ?? ''}`, status.address, owner, status.logFile]);
  }
  return `${table.toString()}\n`;
}

async function reportFailure(action: () => Promise<void>): Promise<void> {
  try {
    await action();
  } catch (error) {
    process.stderr.write(`${errorMessage(error)}\n`);
    process.exitCode = 1;
  }
}
