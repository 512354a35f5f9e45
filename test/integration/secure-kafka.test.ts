// `stack up --secure` against the real thing: a SASL_SSL broker with ACLs started by the stack code
// on ports of its own, a real `arbiter worker` child and the SDK going through it as `worker` and
// `agent`, and the refusals an attacker on the network would meet.
import { execFile } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Kafka, logLevel, type KafkaConfig } from 'kafkajs';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ArbiterClient } from '../../src/agent-sdk/index.ts';
import { ensureDatabase, migrate } from '../../src/db/index.ts';
import { topicNames } from '../../src/index.ts';
import { startSimServer, type SimServer } from '../../tools/fleet/index.ts';
import { secureClientConfig, secureClientEnv, secureKafkaDown, secureKafkaUp, type SecureKafka } from '../../tools/stack/index.ts';
import { ARBITER_BIN, prepareWorkers, spawnWorker, type WorkerProcess } from '../../tools/support/index.ts';
import { removeInstallation, Teardown } from '../support/cleanup.ts';
import { databaseUrlFor, dropDatabase, endpoints, freePort } from '../support/harness.ts';

const run = promisify(execFile);
const POD = 'arn:sim:k8s:local:000000000000:cluster/prod/ns/payments/deployment/api/pod/api-0';
const POD_2 = 'arn:sim:k8s:local:000000000000:cluster/prod/ns/payments/deployment/api/pod/api-1';

describe('stack up --secure: SASL_SSL and ACLs on a real broker', () => {
  const suffix = randomUUID().slice(0, 8);
  const prefix = `sec-${suffix}`;
  const groupId = `sec-g-${suffix}`;
  const topics = topicNames(prefix);
  const databaseUrl = databaseUrlFor(`arbiter_sec_${suffix}`);
  const runDir = mkdtempSync(join(tmpdir(), 'arbiter-secure-kafka-'));
  const teardown = new Teardown(`secure kafka test ${prefix}`);
  let stackEnv: NodeJS.ProcessEnv;
  let secure: SecureKafka;
  let sim: SimServer;
  const executorHmacKey = randomBytes(32).toString('hex');
  let worker: WorkerProcess;
  let admin: ReturnType<Kafka['admin']>;

  beforeAll(async () => {
    await teardown.guard(async () => {
      teardown.add(() => rmSync(runDir, { recursive: true, force: true }));
      // A private instance (its own run dir and ports), so the shared stack and a developer's
      // `stack up --secure` on 9094 are never touched.
      stackEnv = {
        ...process.env,
        ARBITER_STACK_RUN_DIR: runDir,
        ARBITER_SECURE_KAFKA_PORT: String(await freePort()),
        ARBITER_SECURE_KAFKA_CONTROLLER_PORT: String(await freePort()),
      };
      teardown.add(() => secureKafkaDown({ env: stackEnv }));
      // Any failure here fails every test of the file, loudly: there is no skipping a secure broker.
      secure = await secureKafkaUp({ env: stackEnv, topicPrefix: prefix, groupId, partitions: 3 });
      expect(secure.started).toBe(true);
      admin = new Kafka({ clientId: 'secure-test-admin', ...secureClientConfig(secure, 'admin'), logLevel: logLevel.NOTHING }).admin();
      await admin.connect();
      teardown.add(() => admin.disconnect());

      teardown.add(() => dropDatabase(databaseUrl));
      await ensureDatabase(databaseUrl);
      await migrate(databaseUrl);
      // The SDK and the worker register their subjects on the shared registry.
      teardown.add(() => removeInstallation(prefix));
      sim = await startSimServer({ port: 0, hmacKey: executorHmacKey, tokenCheck: { databaseUrl }, latencyScale: 0.2 });
      teardown.add(() => sim.close());
    });
  }, 120_000);

  afterAll(() => teardown.undo());

  /** What an admin sees at the end of a topic: proof that a refused producer wrote nothing. */
  const endOffsets = async (topic: string): Promise<string[]> => (await admin.fetchTopicOffsets(topic)).map((p) => p.high);

  /** A producer that tries once and reports the broker's refusal it met (undefined: it wrote). */
  const tryToProduce = async (config: Pick<KafkaConfig, 'brokers' | 'ssl' | 'sasl'>, topic: string): Promise<(Error & { type?: string }) | undefined> => {
    const producer = new Kafka({
      clientId: 'secure-test-intruder',
      ...config,
      logLevel: logLevel.NOTHING,
      connectionTimeout: 3_000,
      requestTimeout: 5_000,
      retry: { retries: 0 },
    }).producer({ allowAutoTopicCreation: false });
    try {
      await producer.connect();
      await producer.send({ topic, acks: -1, messages: [{ key: 'k', value: 'forged' }] });
      return undefined;
    } catch (error) {
      // kafkajs wraps what the broker said (retries exceeded, non-retriable): the innermost error is it.
      let inner = error as Error & { type?: string };
      while (inner.cause instanceof Error) inner = inner.cause;
      return inner;
    } finally {
      await producer.disconnect().catch(() => undefined);
    }
  };

  it('refuses producers that do not authenticate: plain text, TLS without SASL, a wrong password', async () => {
    const before = await endOffsets(topics.requests);
    const ca = readFileSync(secure.caFile, 'utf8');

    const plaintext = await tryToProduce({ brokers: secure.brokers }, topics.requests);
    expect(plaintext, 'a plaintext producer must be refused').toBeDefined();
    expect(plaintext!.name).toMatch(/^KafkaJS(Connection|ConnectionClosed|RequestTimeout)Error$/);

    const tlsOnly = await tryToProduce({ brokers: secure.brokers, ssl: { ca: [ca] } }, topics.requests);
    expect(tlsOnly, 'a TLS producer without SASL must be refused').toBeDefined();
    expect(tlsOnly!.name).toMatch(/^KafkaJS(Connection|ConnectionClosed|RequestTimeout)Error$/);

    const wrongPassword = await tryToProduce(
      { brokers: secure.brokers, ssl: { ca: [ca] }, sasl: { mechanism: 'scram-sha-512', username: 'agent', password: 'not-the-password' } },
      topics.requests,
    );
    expect(wrongPassword?.name).toBe('KafkaJSSASLAuthenticationError');

    // A client that does not trust the broker's CA does not even finish the TLS handshake.
    const untrusted = await tryToProduce({ ...secureClientConfig(secure, 'agent'), ssl: true }, topics.requests);
    expect(untrusted, 'a client without the CA must not connect').toBeDefined();

    expect(await endOffsets(topics.requests)).toEqual(before);
  });

  it('refuses an agent writing outcomes (TOPIC_AUTHORIZATION_FAILED) and gives analysts nothing', async () => {
    const before = await endOffsets(topics.outcomes);
    const forged = await tryToProduce(secureClientConfig(secure, 'agent'), topics.outcomes);
    expect(forged?.type).toBe('TOPIC_AUTHORIZATION_FAILED');
    expect(await endOffsets(topics.outcomes)).toEqual(before);

    // Analysts authenticate, but see no topic and may write none.
    const analyst = new Kafka({ clientId: 'secure-test-analyst', ...secureClientConfig(secure, 'analyst'), logLevel: logLevel.NOTHING, retry: { retries: 0 } }).admin();
    await analyst.connect();
    try {
      expect((await analyst.listTopics()).filter((topic) => topic.startsWith(`${prefix}.`))).toEqual([]);
    } finally {
      await analyst.disconnect();
    }
    const analystWrite = await tryToProduce(secureClientConfig(secure, 'analyst'), topics.requests);
    expect(analystWrite?.type).toBe('TOPIC_AUTHORIZATION_FAILED');
  });

  it('runs a worker (as `worker`) and the SDK and the CLI (as `agent`) end to end over SASL_SSL', async () => {
    const dir = mkdtempSync(join(runDir, 'worker-'));
    const site = {
      kafkaBrokers: secure.brokers,
      schemaRegistryUrl: endpoints.schemaRegistryUrl,
      databaseUrl,
      topicPrefix: prefix,
      groupId,
      executorUrl: sim.url,
      executorHmacKey,
    };
    const setup = prepareWorkers(dir, site, { kafka: { requestPartitions: 3 } });
    const workerEnv = { ...setup.env, ...secureClientEnv(secure, 'worker') };
    worker = await spawnWorker({ id: `sec-w1-${suffix}`, configFile: setup.configFile, env: workerEnv });
    teardown.add(() => worker.stop('SIGTERM'));
    await worker.waitReady(60_000);

    const client = new ArbiterClient({
      ...secureClientConfig(secure, 'agent'),
      schemaRegistryUrl: endpoints.schemaRegistryUrl,
      topicPrefix: prefix,
      clientId: 'secure-agent',
    });
    teardown.add(() => client.close());
    await client.connect();
    const outcome = await client.submitAndWait({ agentId: 'secure-agent', resourceArn: POD, action: 'restart' }, { timeoutMs: 45_000 });
    expect(outcome.status).toBe('EXECUTED');
    expect(outcome.fencingToken).toBeGreaterThan(0);

    // The CLI takes the same settings from the environment (KAFKA_SSL_* / KAFKA_SASL_*).
    const { stdout } = await run(
      process.execPath,
      [ARBITER_BIN, 'submit', '--agent', 'secure-cli', '--arn', POD_2, '--action', 'restart', '--wait', '--json', '--timeout', '45'],
      { env: { ...process.env, ...secureClientEnv(secure, 'agent'), DATABASE_URL: databaseUrl, ARBITER_TOPIC_PREFIX: prefix, SCHEMA_REGISTRY_URL: endpoints.schemaRegistryUrl } },
    );
    expect(JSON.parse(stdout).status).toBe('EXECUTED');

    const db = new pg.Pool({ connectionString: databaseUrl, max: 1 });
    try {
      const { rows } = await db.query(
        "SELECT r.agent_id, d.status FROM arbiter.requests r JOIN arbiter.decisions d USING (request_id) WHERE d.final ORDER BY r.agent_id",
      );
      expect(rows).toEqual([
        { agent_id: 'secure-agent', status: 'EXECUTED' },
        { agent_id: 'secure-cli', status: 'EXECUTED' },
      ]);
    } finally {
      await db.end();
    }
    expect(worker.output()).not.toContain(readFileSync(secure.passwordFiles.worker, 'utf8').trim());
  });
});
