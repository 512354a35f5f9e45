import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll } from 'vitest';
import { ArbiterClient } from '../../src/agent-sdk/index.ts';
import type { ArbiterConfig, ConfigInput } from '../../src/config/index.ts';
import { createPool, ensureDatabase, migrate, type Pool } from '../../src/db/index.ts';
import { parseFleetSpec, startSimServer, type FleetSpecInput, type SimServer } from '../../tools/fleet/index.ts';
import { databaseUrlFor as onTestServer, dropDatabase, mergeConfig, prepareWorkers, spawnWorker, type WorkerProcess } from '../../tools/support/index.ts';
import { removeInstallation, Teardown } from './cleanup.ts';
import { endpoints } from './endpoints.ts';

export { endpoints };

/** A database of that name on the test server. */
export function databaseUrlFor(name: string): string {
  return onTestServer(endpoints.databaseUrl, name);
}

export { dropDatabase, freePort, type WorkerProcess } from '../../tools/support/index.ts';

/**
 * A database of the calling test file's own (`<prefix>_<random>`), migrated before its tests and
 * dropped after them, with a pool on it (which connects at its first query, after the migration).
 * Call it inside the file's `describe`; the file's own hooks run after this one's beforeAll and
 * before its afterAll.
 */
export function migratedDatabase(prefix: string, connections: number): { databaseUrl: string; pool: Pool } {
  const databaseUrl = databaseUrlFor(`${prefix}_${randomUUID().slice(0, 8)}`);
  const pool = createPool(databaseUrl, connections);
  beforeAll(() => migrate(databaseUrl).then(() => undefined));
  afterAll(async () => {
    await pool.end();
    await dropDatabase(databaseUrl);
  });
  return { databaseUrl, pool };
}

export interface TestEnvOptions {
  fleet?: FleetSpecInput;
  latencyScale?: number;
  /** Config for the workers (written to a file passed with --config). */
  config?: Partial<Record<keyof ConfigInput, unknown>>;
  workers?: number;
  partitions?: number;
  /** The fleet publishes observations (after every change, and a snapshot this often) for the detector. */
  observe?: { snapshotMs: number };
}

export interface TestEnv {
  prefix: string;
  groupId: string;
  databaseUrl: string;
  sim: SimServer;
  /** The key the fleet requires on POSTs and the workers sign with: call the fleet with signedFetch(env.executorHmacKey, …). */
  executorHmacKey: string;
  config: Readonly<ArbiterConfig>;
  db: pg.Pool;
  workers: WorkerProcess[];
  /** Plan relays started apart from the workers (`arbiter relay`). */
  relays: WorkerProcess[];
  /** The environment and config file the workers got: for running `arbiter …` commands against this installation. */
  cliEnv: NodeJS.ProcessEnv;
  configFile: string;
  client(agentId?: string): Promise<ArbiterClient>;
  startWorker(): Promise<WorkerProcess>;
  startRelay(): Promise<WorkerProcess>;
  stop(): Promise<void>;
}

/**
 * A private Arbiter for one test file: its own topics (unique prefix), consumer group, database,
 * simulated fleet, and worker *processes* (real `arbiter worker` children, so tests can SIGKILL
 * them). stop() removes all of it — the topics and registry subjects of its prefix, its database
 * and temp dir — except the consumer groups, which Kafka expires by itself.
 */
export async function startTestEnv(options: TestEnvOptions = {}): Promise<TestEnv> {
  const suffix = randomUUID().slice(0, 8);
  const prefix = `t-${suffix}`;
  const groupId = `g-${suffix}`;
  const dbName = `arbiter_t_${suffix}`;
  const databaseUrl = databaseUrlFor(dbName);
  const clients: ArbiterClient[] = [];
  const workers: WorkerProcess[] = [];
  const relays: WorkerProcess[] = [];
  const teardown = new Teardown(`test environment ${prefix}`);
  return teardown.guard(async () => {
    teardown.add(() => dropDatabase(databaseUrl));
    await ensureDatabase(databaseUrl);
    await migrate(databaseUrl);
    // Workers and clients create the topics and register the subjects; removed once they are gone.
    teardown.add(() => removeInstallation(prefix));
    const dir = mkdtempSync(join(tmpdir(), 'arbiter-test-'));
    teardown.add(() => rmSync(dir, { recursive: true, force: true }));
    let observer: ArbiterClient | null = null;
    if (options.observe) {
      observer = new ArbiterClient({ brokers: [endpoints.kafkaBrokers], schemaRegistryUrl: endpoints.schemaRegistryUrl, topicPrefix: prefix, clientId: 'sim-fleet' });
      teardown.add(() => observer!.close());
    }
    // Every test runs signed, and the fleet accepts only fencing tokens this database's leases issued.
    const executorHmacKey = randomBytes(32).toString('hex');
    const sim = await startSimServer({
      port: 0,
      hmacKey: executorHmacKey,
      tokenCheck: { databaseUrl },
      ...(options.fleet ? { spec: parseFleetSpec(options.fleet) } : {}),
      latencyScale: options.latencyScale ?? 0.2,
      ...(observer && options.observe ? { observations: { sink: observer, snapshotMs: options.observe.snapshotMs, onError: (e: unknown) => console.warn(`sim fleet: publishing observations failed: ${String(e)}`) } } : {}),
    });
    teardown.add(() => sim.close());
    const site = { kafkaBrokers: endpoints.kafkaBrokers, schemaRegistryUrl: endpoints.schemaRegistryUrl, databaseUrl, topicPrefix: prefix, groupId, executorUrl: sim.url, executorHmacKey };
    const fileConfig = mergeConfig({ kafka: { requestPartitions: options.partitions ?? 6 } }, options.config ?? {});
    const { configFile, env: baseEnv, config } = prepareWorkers(dir, site, fileConfig);
    const db = new pg.Pool({ connectionString: databaseUrl, max: 3 });
    // A test that restarts PostgreSQL breaks idle connections: the pool replaces them (an unhandled
    // 'error' event would end the test process).
    db.on('error', () => undefined);
    teardown.add(() => db.end());
    // Undone first: the clients, then the workers, before the topics they would still be using.
    teardown.add(() => Promise.all([...workers, ...relays].map((w) => w.stop('SIGTERM'))));
    teardown.add(() => Promise.all(clients.map((c) => c.close())));

    const startWorker = async (): Promise<WorkerProcess> => {
      const worker = await spawnWorker({ id: `w${workers.length + 1}-${suffix}`, configFile, env: baseEnv });
      workers.push(worker);
      await worker.waitReady();
      return worker;
    };

    const startRelay = async (): Promise<WorkerProcess> => {
      const relay = await spawnWorker({ id: `r${relays.length + 1}-${suffix}`, configFile, env: baseEnv, command: 'relay' });
      relays.push(relay);
      await relay.waitReady();
      return relay;
    };

    for (let i = 0; i < (options.workers ?? 1); i++) await startWorker();

    return {
      prefix,
      groupId,
      databaseUrl,
      sim,
      executorHmacKey,
      config,
      db,
      workers,
      relays,
      cliEnv: { ...baseEnv, ARBITER_CONFIG: configFile },
      configFile,
      startWorker,
      startRelay,
      async client(agentId = 'test-agent') {
        const client = new ArbiterClient({
          brokers: [endpoints.kafkaBrokers],
          schemaRegistryUrl: endpoints.schemaRegistryUrl,
          topicPrefix: prefix,
          clientId: agentId,
        });
        clients.push(client);
        return client.connect();
      },
      stop: () => teardown.undo(),
    };
  });
}

/** Polls until `check` returns a truthy value, or fails with what it last saw. */
export async function eventually<T>(check: () => Promise<T | undefined | null | false>, timeoutMs = 30_000, what = 'condition'): Promise<T> {
  const until = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < until) {
    try {
      const value = await check();
      if (value) return value;
      last = value;
    } catch (error) {
      last = error;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out waiting for ${what}; last: ${last instanceof Error ? last.message : JSON.stringify(last)}`);
}
