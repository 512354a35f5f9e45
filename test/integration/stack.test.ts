import { Kafka, logLevel } from 'kafkajs';
import pg from 'pg';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ArbiterError } from '../../src/contract/errors.ts';
import { SERVICE_NAMES, stackStatus, stackUp, type ServiceName } from '../../tools/stack/index.ts';
import { endpoints, freePort } from '../support/harness.ts';

/** Where the test environment says each service is (global-setup.ts fills in what it found). */
const ADDRESSES: Record<ServiceName, string> = {
  kafka: endpoints.kafkaBrokers,
  registry: endpoints.schemaRegistryUrl,
  postgres: endpoints.databaseUrl,
};
const ENV_NAMES: Record<ServiceName, string> = { kafka: 'KAFKA_BROKERS', registry: 'SCHEMA_REGISTRY_URL', postgres: 'DATABASE_URL' };

/**
 * Whether the service at `address` answers a real request, asked with a client of the test's own
 * (not the stack's probes, which are what is under test): undefined when it does, else why not.
 */
async function problemAt(service: ServiceName, address: string): Promise<string | undefined> {
  try {
    if (service === 'kafka') {
      const admin = new Kafka({ clientId: 'stack-test', brokers: address.split(','), logLevel: logLevel.NOTHING, connectionTimeout: 3_000, requestTimeout: 5_000, retry: { retries: 0 } }).admin();
      await admin.connect();
      try {
        await admin.listTopics();
      } finally {
        await admin.disconnect();
      }
    } else if (service === 'registry') {
      const response = await fetch(`${address}/subjects`, { signal: AbortSignal.timeout(5_000) });
      if (!response.ok) return `GET /subjects answered ${response.status}`;
      await response.body?.cancel();
    } else {
      // DATABASE_URL names a server (each test makes its own database on it): ask its maintenance
      // database, which every server has.
      const server = new URL(address);
      server.pathname = '/postgres';
      const client = new pg.Client({ connectionString: server.toString(), connectionTimeoutMillis: 3_000 });
      client.on('error', () => undefined);
      try {
        await client.connect();
        await client.query('SELECT 1');
      } finally {
        await client.end().catch(() => undefined);
      }
    }
    return undefined;
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  }
}

/** An address where nothing listens, of the kind each service's variable takes. */
async function deadAddress(service: ServiceName): Promise<string> {
  const port = await freePort();
  if (service === 'kafka') return `127.0.0.1:${port}`;
  if (service === 'registry') return `http://127.0.0.1:${port}/apis/ccompat/v7`;
  return `postgres://postgres@127.0.0.1:${port}/arbiter`;
}

describe('local stack', () => {
  afterEach(() => {
    vi.unstubAllEnvs();
  });

  it('status reports each service reachable exactly when a client of its own reaches it, at the address the environment names', async () => {
    const truth = await Promise.all(SERVICE_NAMES.map((service) => problemAt(service, ADDRESSES[service])));
    const status = await stackStatus({ env: { ...process.env, KAFKA_BROKERS: ADDRESSES.kafka, SCHEMA_REGISTRY_URL: ADDRESSES.registry, DATABASE_URL: ADDRESSES.postgres } });
    expect(status.map(({ service, address, reachable }) => ({ service, address, reachable }))).toEqual(
      SERVICE_NAMES.map((service, i) => ({ service, address: ADDRESSES[service], reachable: truth[i] === undefined })),
    );
  });

  // The other half of "exactly when": a status that always said reachable would pass the test above
  // while everything runs. One service at a time points at a port where nothing listens.
  it.each(SERVICE_NAMES)('status reports %s unreachable, with the reason, when nothing answers at its address; the others still reachable', async (down) => {
    const address = await deadAddress(down);
    expect(await problemAt(down, address), `nothing should answer at ${address}`).toBeDefined();
    const env = { ...process.env, KAFKA_BROKERS: ADDRESSES.kafka, SCHEMA_REGISTRY_URL: ADDRESSES.registry, DATABASE_URL: ADDRESSES.postgres, [ENV_NAMES[down]]: address };
    const status = await stackStatus({ env });
    expect(status.map(({ service, address: at, reachable }) => ({ service, at, reachable }))).toEqual(
      SERVICE_NAMES.map((service) => ({ service, at: service === down ? address : ADDRESSES[service], reachable: service !== down })),
    );
    expect(status.find((s) => s.service === down)?.problem).toMatch(/\S/);
  });

  it('reuses the running services instead of starting them', async () => {
    // The premise, checked first and named: every service answers at the address the environment
    // gives. Without it `up` would start the missing one (that is its job), and this test would
    // fail for the wrong reason after a side effect that outlives it.
    const problems = await Promise.all(SERVICE_NAMES.map(async (service) => [service, await problemAt(service, ADDRESSES[service])] as const));
    expect(problems.filter(([, problem]) => problem !== undefined).map(([service, problem]) => `${service} at ${ADDRESSES[service]}: ${problem}`)).toEqual([]);

    const endpointsUp = await stackUp();
    expect(endpointsUp).toEqual({ kafkaBrokers: ADDRESSES.kafka.split(','), schemaRegistryUrl: ADDRESSES.registry, databaseUrl: ADDRESSES.postgres, started: [] });
  });

  it('answers a second `up` quickly, starting nothing', async () => {
    await stackUp();
    const startedAt = performance.now();
    const again = await stackUp();
    expect(again.started).toEqual([]);
    expect(performance.now() - startedAt).toBeLessThan(3_000);
  });

  it('refuses to start anything for an address that is not its own, naming the service', async () => {
    vi.stubEnv('KAFKA_BROKERS', '127.0.0.1:1');
    const failure = await stackUp().then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(failure).toBeInstanceOf(ArbiterError);
    expect((failure as ArbiterError).code).toBe('STACK_FAILED');
    expect((failure as Error).message).toMatch(/^Kafka: 127\.0\.0\.1:1 \(from KAFKA_BROKERS\) is not reachable/);
  });
});
