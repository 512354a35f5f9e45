import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stackDown, stackUp } from '../../tools/stack/index.ts';
import { freePort } from '../../tools/support/index.ts';

/**
 * Fault tests stop, freeze and restart Kafka and the registry, so they get a private instance of
 * both (own run directory, free loopback ports) and never touch the shared ones other test runs
 * use. PostgreSQL is shared (DATABASE_URL): each test gets its own database on it, and nothing here
 * restarts it. The endpoints reach the test files through the environment, and so do
 * `restartKafka()` and friends (ARBITER_STACK_RUN_DIR names this instance).
 */
export default async function privateStack(): Promise<() => Promise<void>> {
  const runDir = mkdtempSync(join(tmpdir(), 'arbiter-faults-'));
  const [kafka, controller, registry, management] = await distinctFreePorts(4);
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    ARBITER_STACK_RUN_DIR: runDir,
    ARBITER_STACK_MODE: 'local',
    KAFKA_BROKERS: `127.0.0.1:${kafka}`,
    ARBITER_KAFKA_CONTROLLER_PORT: String(controller),
    SCHEMA_REGISTRY_URL: `http://127.0.0.1:${registry}/apis/ccompat/v7`,
    ARBITER_REGISTRY_MANAGEMENT_PORT: String(management),
    DATABASE_URL: process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/arbiter',
  };
  const log = (line: string): void => {
    process.stderr.write(`[faults stack] ${line}\n`);
  };
  // A failure here fails the run, naming the service and its log: never a skip.
  const endpoints = await stackUp({ env, log });
  for (const name of [
    'ARBITER_STACK_RUN_DIR',
    'ARBITER_STACK_MODE',
    'KAFKA_BROKERS',
    'ARBITER_KAFKA_CONTROLLER_PORT',
    'SCHEMA_REGISTRY_URL',
    'ARBITER_REGISTRY_MANAGEMENT_PORT',
  ]) {
    process.env[name] = env[name];
  }
  process.env.DATABASE_URL = endpoints.databaseUrl;
  return async () => {
    await stackDown({ env, log });
    rmSync(runDir, { recursive: true, force: true });
  };
}

async function distinctFreePorts(count: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < count) ports.add(await freePort());
  return [...ports];
}
