import { SERVICE_LABELS, redactPassword, stackStatus } from '../../tools/stack/index.ts';

const ENV_NAMES = { kafka: 'KAFKA_BROKERS', registry: 'SCHEMA_REGISTRY_URL', postgres: 'DATABASE_URL' } as const;

/**
 * Integration tests need the real services and never start them: starting is `npm test`'s
 * job (or `arbiter stack up`'s). A missing service fails the run at once, by name, instead
 * of as a hundred timeouts.
 */
export default async function checkStackIsUp(): Promise<void> {
  const services = await stackStatus();
  const missing = services.filter((status) => !status.reachable);
  if (missing.length > 0) {
    const lines = missing.map((status) => {
      const address = status.service === 'postgres' ? redactPassword(status.address) : status.address;
      return `  - ${SERVICE_LABELS[status.service]} at ${address} (${ENV_NAMES[status.service]}): ${status.problem ?? 'not reachable'}`;
    });
    throw new Error(
      `Integration tests need Kafka, the schema registry and PostgreSQL, and these are not reachable:\n` +
        `${lines.join('\n')}\n` +
        'Run `npm test` (which starts the stack) or `npx arbiter stack up`, ' +
        'or point KAFKA_BROKERS / SCHEMA_REGISTRY_URL / DATABASE_URL at running services.',
    );
  }
  // Test files read the endpoints from the environment; fill in what was found (an embedded
  // PostgreSQL on 5433, say) for a plain `npx vitest` run that did not set them.
  for (const status of services) process.env[ENV_NAMES[status.service]] ??= status.address;
}
