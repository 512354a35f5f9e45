import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Kafka, logLevel, type IHeaders } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { partitionForKey } from '../../src/routing/index.ts';
import { Serde } from '../../src/contract/serde.ts';
import { HEADERS, topicNames } from '../../src/contract/topics.ts';
import { generateSigningKeys } from '../../src/contract/signing.ts';
import { endpoints, eventually, startTestEnv, type TestEnv } from '../support/harness.ts';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const SCRIPT = fileURLToPath(new URL('../clients/produce_request.py', import.meta.url));
/** Debian's interpreter, where scripts/install-system-deps.sh puts python3-confluent-kafka and python3-avro. */
const PYTHON = '/usr/bin/python3';
const POD = 'arn:sim:k8s:local:000000000000:cluster/prod/ns/payments/deployment/api/pod/api-2';
const DEPLOYMENT = 'arn:sim:k8s:local:000000000000:cluster/prod/ns/payments/deployment/api';
/** An agent with a registered key: the Python client signs for it. */
const SIGNER = generateSigningKeys();

/** The CRC-32 (zlib/IEEE) librdkafka's consistent_random partitioner hashes keys with. (zlib.crc32 needs Node ≥ 20.15.) */
function crc32(text: string): number {
  let crc = 0xffffffff;
  for (const byte of Buffer.from(text, 'utf8')) {
    crc ^= byte;
    for (let bit = 0; bit < 8; bit++) crc = (crc >>> 1) ^ (0xedb88320 & -(crc & 1));
  }
  return (crc ^ 0xffffffff) >>> 0;
}

/** Why the Python client cannot run, if it cannot: the test then fails with this (it never skips). */
async function pythonDepsProblem(): Promise<Error | null> {
  try {
    await run(PYTHON, ['-c', 'import confluent_kafka, avro, requests, cryptography'], { timeout: 30_000 });
    return null;
  } catch (error) {
    const detail = (error as { stderr?: string }).stderr?.trim() || (error as Error).message;
    return new Error(
      `The non-JavaScript client test needs ${PYTHON} with confluent_kafka, avro, requests and cryptography, and it cannot import them:\n` +
        `  ${detail}\n` +
        'Run `bash scripts/install-system-deps.sh` (apt-get install python3-confluent-kafka python3-avro python3-requests python3-cryptography).',
    );
  }
}

interface Produced {
  requestId: string;
  schemaId: number;
  partition: number;
  offset: number;
  key: string;
}

interface RawRecord {
  partition: number;
  offset: string;
  key: string | undefined;
  value: Buffer;
  headers: IHeaders | undefined;
}

describe('a request produced by a non-JavaScript Confluent-compatible client (Python, librdkafka + Apache Avro) is accepted', () => {
  let env: TestEnv;
  let depsProblem: Error | null = null;

  beforeAll(async () => {
    depsProblem = await pythonDepsProblem();
    if (!depsProblem) env = await startTestEnv({ workers: 1, config: { signatures: { agentKeys: { 'python-signer': SIGNER.publicKey } } } });
  });
  afterAll(async () => {
    await env?.stop();
  });

  it('a pod restart keyed by its ARN with librdkafka’s partitioner is re-routed to its scope and EXECUTED', async () => {
    if (depsProblem) throw depsProblem;
    const topics = topicNames(env.prefix);
    // The SDK registers both schemas on connect; the Python client then looks up the same subject.
    const client = await env.client('python-agent');
    const sdkSerde = new Serde(endpoints.schemaRegistryUrl, topics);
    await sdkSerde.register();
    const sdkSchemaId = sdkSerde.schemaIds.request;
    expect(sdkSchemaId).toBeGreaterThan(0);

    const produced = await producePython(topics.requests, ['--agent', 'python-agent', '--arn', POD, '--action', 'restart', '--param', 'note=from python']);
    expect(produced.requestId).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(produced.key).toBe(POD);
    expect(produced.schemaId).toBe(sdkSchemaId);

    const partitions = env.config.kafka.requestPartitions;
    const scopePartition = partitionForKey(DEPLOYMENT, partitions);
    // librdkafka's default partitioner (consistent_random) is CRC32(key) % partitions, not murmur2.
    expect(produced.partition).toBe(crc32(POD) % partitions);
    const rerouted = produced.partition !== scopePartition;

    const outcome = await client.awaitOutcome(produced.requestId, { timeoutMs: 60_000 });
    expect(outcome.status, outcome.detail ?? '').toBe('EXECUTED');
    expect(outcome.scope).toBe(DEPLOYMENT);
    expect(outcome.resourceArn).toBe(POD);
    expect(outcome.agentId).toBe('python-agent');

    const requests = await env.db.query(
      'SELECT agent_id, resource_arn, scope, action, params, kafka_partition, rerouted_from FROM arbiter.requests WHERE request_id = $1',
      [produced.requestId],
    );
    expect(requests.rows).toEqual([
      {
        agent_id: 'python-agent',
        resource_arn: POD,
        scope: DEPLOYMENT,
        action: 'restart',
        params: { note: 'from python' },
        kafka_partition: scopePartition,
        rerouted_from: rerouted ? produced.partition : null,
      },
    ]);
    const decisions = await env.db.query('SELECT status, final FROM arbiter.decisions WHERE request_id = $1 ORDER BY decided_at', [produced.requestId]);
    expect(decisions.rows).toEqual([
      ...(rerouted ? [{ status: 'REROUTED', final: false }] : []),
      { status: 'ACCEPTED', final: false },
      { status: 'EXECUTED', final: true },
    ]);
    expect(env.sim.fleet.observe(POD).appliedRequestIds).toContain(produced.requestId);

    // The bytes on the topic: Confluent framing with the SDK's schema id, decodable by the SDK's serde.
    const records = await readRequestRecords(env, topics.requests, rerouted ? 2 : 1);
    const original = records.find((r) => r.partition === produced.partition && r.offset === String(produced.offset));
    expect(original, `record at ${produced.partition}/${produced.offset}`).toBeDefined();
    expect(original!.key).toBe(POD);
    expect(original!.value[0]).toBe(0);
    expect(original!.value.readUInt32BE(1)).toBe(sdkSchemaId);
    const decoded = await sdkSerde.decodeRequest(original!.value);
    expect(decoded).toMatchObject({ requestId: produced.requestId, agentId: 'python-agent', resourceArn: POD, action: 'restart', params: { note: 'from python' } });
    if (rerouted) {
      const moved = records.find((r) => r.partition === scopePartition);
      expect(moved, 'the re-routed copy on the scope partition').toBeDefined();
      expect(moved!.key).toBe(DEPLOYMENT);
      expect(Buffer.compare(moved!.value, original!.value)).toBe(0);
      expect(moved!.headers?.[HEADERS.reroutedFrom]?.toString()).toBe(String(produced.partition));
    }
  });

  it('keyed by its scope with partitioner=murmur2_random, it lands on the scope partition and is not re-routed', async () => {
    if (depsProblem) throw depsProblem;
    const topics = topicNames(env.prefix);
    const client = await env.client('python-agent');
    const pod = `${DEPLOYMENT}/pod/api-3`;
    const produced = await producePython(topics.requests, [
      '--agent', 'python-agent', '--arn', pod, '--action', 'restart', '--key', DEPLOYMENT, '--partitioner', 'murmur2_random',
    ]);
    const scopePartition = partitionForKey(DEPLOYMENT, env.config.kafka.requestPartitions);
    expect(produced.partition).toBe(scopePartition);

    const outcome = await client.awaitOutcome(produced.requestId, { timeoutMs: 60_000 });
    expect(outcome.status, outcome.detail ?? '').toBe('EXECUTED');
    const requests = await env.db.query('SELECT agent_id, kafka_partition, kafka_offset, rerouted_from FROM arbiter.requests WHERE request_id = $1', [produced.requestId]);
    expect(requests.rows.map((r) => ({ ...r, kafka_offset: Number(r.kafka_offset) }))).toEqual([
      { agent_id: 'python-agent', kafka_partition: scopePartition, kafka_offset: produced.offset, rerouted_from: null },
    ]);
    const decisions = await env.db.query('SELECT status FROM arbiter.decisions WHERE request_id = $1 ORDER BY decided_at', [produced.requestId]);
    expect(decisions.rows.map((r) => r.status)).toEqual(['ACCEPTED', 'EXECUTED']);
  });

  it('a request signed in Python (Ed25519 over the produced bytes) is verified; signed with another key it is refused', async () => {
    if (depsProblem) throw depsProblem;
    const dir = mkdtempSync(join(tmpdir(), 'arbiter-py-key-'));
    try {
      const keyFile = join(dir, 'signer.pem');
      writeFileSync(keyFile, SIGNER.privateKeyPem);
      const otherFile = join(dir, 'other.pem');
      writeFileSync(otherFile, generateSigningKeys().privateKeyPem);
      const client = await env.client('python-watcher');
      const topic = topicNames(env.prefix).requests;
      const signed = await producePython(topic, ['--agent', 'python-signer', '--arn', POD, '--action', 'restart', '--param', 'note=signed', '--key', DEPLOYMENT, '--sign-key', keyFile]);
      expect((await client.awaitOutcome(signed.requestId, { timeoutMs: 60_000 })).status).toBe('EXECUTED');
      const forged = await producePython(topic, ['--agent', 'python-signer', '--arn', POD, '--action', 'restart', '--param', 'note=forged', '--key', DEPLOYMENT, '--sign-key', otherFile]);
      const refused = await client.awaitOutcome(forged.requestId, { timeoutMs: 60_000 });
      expect(refused).toMatchObject({ status: 'REJECTED_UNAUTHORIZED', detail: "the signature does not verify with agent python-signer's key" });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

/** Runs test/clients/produce_request.py with Debian's python3 against this environment; its JSON line. */
async function producePython(topic: string, args: string[]): Promise<Produced> {
  const { stdout } = await run(
    PYTHON,
    [SCRIPT, '--brokers', endpoints.kafkaBrokers, '--registry', endpoints.schemaRegistryUrl, '--topic', topic, ...args],
    { cwd: ROOT, timeout: 60_000 },
  ).catch((error: { stdout?: string; stderr?: string; message: string }) => {
    throw new Error(`produce_request.py failed: ${error.message}\nstdout: ${error.stdout ?? ''}\nstderr: ${error.stderr ?? ''}`);
  });
  return JSON.parse(stdout.trim().split('\n').at(-1)!) as Produced;
}

/** Every record on the (private) requests topic, raw, once at least `expected` have arrived. */
async function readRequestRecords(env: TestEnv, topic: string, expected: number): Promise<RawRecord[]> {
  const kafka = new Kafka({ clientId: 'non-js-client-test', brokers: [endpoints.kafkaBrokers], logLevel: logLevel.NOTHING });
  const consumer = kafka.consumer({ groupId: `raw-reader-${env.prefix}` });
  const seen: RawRecord[] = [];
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ partition, message }) => {
        seen.push({ partition, offset: message.offset, key: message.key?.toString(), value: message.value!, headers: message.headers });
      },
    });
    await eventually(async () => seen.length >= expected, 30_000, `${expected} record(s) on ${topic}`);
  } finally {
    await consumer.disconnect();
  }
  return seen;
}
