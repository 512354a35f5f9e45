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
    .option('--secure', 'also start a SASL_SSL broker with ACLs (127.0.0.1:9094, ARBITER_SECURE_KAFKA_PORT) and print its settings')
    .addOption(
      new Option('--user <user>', 'with --secure: whose credentials the printed KAFKA_SASL_* settings carry')
        .choices(['admin', 'worker', 'agent', 'analyst'])
        .default('worker'),
    )
    .option('--topic-prefix <prefix>', 'with --secure: the installation whose topics and ACLs to make (default ARBITER_TOPIC_PREFIX or arbiter)')
    .option('--group-id <group>', "with --secure: the workers' consumer group the ACLs name (default ARBITER_GROUP_ID or arbiter-workers)")
    .option('--partitions <count>', 'with --secure: partitions of the topics the admin creates', (value) => positiveInteger(value, '--partitions'))
    .action((options: UpOptions) =>
      runCommand(async () => {
        const { secureClientEnv, secureKafkaUp, stackUp } = await import('../../stack/index.ts');
        const startedAt = Date.now();
        const endpoints = await stackUp({ log: progressToStderr, ...(options.runtime === undefined ? {} : { runtime: options.runtime }) });
        const secure =
          options.secure === true
            ? await secureKafkaUp({
                log: progressToStderr,
                ...(options.topicPrefix === undefined ? {} : { topicPrefix: options.topicPrefix }),
                ...(options.groupId === undefined ? {} : { groupId: options.groupId }),
                ...(options.partitions === undefined ? {} : { partitions: options.partitions }),
              })
            : undefined;
        const started = [...endpoints.started, ...(secure?.started === true ? ['secure kafka'] : [])];
        progressToStderr(`up in ${((Date.now() - startedAt) / 1000).toFixed(1)} s (${started.length > 0 ? `started ${started.join(', ')}` : 'all reused'})`);
        const lines: string[] = [];
        if (secure === undefined) {
          lines.push(`KAFKA_BROKERS=${endpoints.kafkaBrokers.join(',')}`);
        } else {
          const user = options.user ?? 'worker';
          lines.push(...Object.entries(secureClientEnv(secure, user)).map(([name, value]) => `${name}=${value}`));
          lines.push(`ARBITER_TOPIC_PREFIX=${secure.topicPrefix}`, `ARBITER_GROUP_ID=${secure.groupId}`);
        }
        lines.push(`SCHEMA_REGISTRY_URL=${endpoints.schemaRegistryUrl}`, `DATABASE_URL=${endpoints.databaseUrl}`);
        if (secure !== undefined) {
          // Comments, so `eval "$(arbiter stack up --secure)"` still works: where the other identities are.
          for (const [name, file] of Object.entries(secure.passwordFiles)) {
            lines.push(`# ${name}: KAFKA_SASL_USERNAME=${name} KAFKA_SASL_PASSWORD_FILE=${file}`);
          }
        }
        process.stdout.write(`${lines.join('\n')}\n`);
      }),
    );

  stack
    .command('down')
    .description('stop what `stack up` started, the secure broker too (nothing else)')
    .option('--secure', 'stop only the secure broker (and forget its certificates and credentials)')
    .action((options: { secure?: boolean }) =>
      runCommand(async () => {
        const { secureKafkaDown, stackDown } = await import('../../stack/index.ts');
        if (options.secure === true) {
          const pid = await secureKafkaDown({ log: progressToStderr });
          progressToStderr(pid === undefined ? 'no secure broker started by stack up was running' : 'stopped secure kafka');
          return;
        }
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

interface UpOptions {
  runtime?: 'local' | 'docker' | 'auto';
  secure?: boolean;
  user?: 'admin' | 'worker' | 'agent' | 'analyst';
  topicPrefix?: string;
  groupId?: string;
  partitions?: number;
}

function positiveInteger(value: string, flag: string): number {
  const number = Number(value);
  if (!Number.isInteger(number) || number < 1) throw new Error(`${flag} must be a positive whole number, not "${value}"`);
  return number;
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
