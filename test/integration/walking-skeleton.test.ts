import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { Kafka, logLevel } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { partitionForKey } from '../../src/routing/index.ts';
import { Serde } from '../../src/contract/serde.ts';
import { buildRequest } from '../../src/contract/request.ts';
import { topicNames, HEADERS } from '../../src/contract/topics.ts';
import { endpoints, eventually, startTestEnv, type TestEnv } from '../support/harness.ts';

const run = promisify(execFile);
const POD = 'arn:sim:k8s:local:000000000000:cluster/prod/ns/payments/deployment/api/pod/api-0';
const DEPLOYMENT = 'arn:sim:k8s:local:000000000000:cluster/prod/ns/payments/deployment/api';

describe('walking skeleton: one request end to end on real Kafka, registry and Postgres', () => {
  let env: TestEnv;
  const kafka = new Kafka({ clientId: 'skeleton-test', brokers: [endpoints.kafkaBrokers], logLevel: logLevel.NOTHING });
  const producer = kafka.producer();

  beforeAll(async () => {
    env = await startTestEnv({ workers: 1 });
    await producer.connect();
  });
  afterAll(async () => {
    await producer.disconnect();
    await env?.stop();
  });

  it('`arbiter submit --wait --json` for a pod restart ends EXECUTED, with its audit rows', async () => {
    const { stdout } = await run(
      process.execPath,
      ['bin/arbiter.js', 'submit', '--agent', 'cli-agent', '--arn', POD, '--action', 'restart', '--wait', '--json', '--timeout', '60'],
      { env: { ...process.env, DATABASE_URL: env.databaseUrl, ARBITER_TOPIC_PREFIX: env.prefix } },
    );
    const outcome = JSON.parse(stdout);
    expect(outcome.status).toBe('EXECUTED');
    expect(outcome.requestId).toMatch(/^[0-9a-f-]{36}$/);
    expect(outcome.scope).toBe(DEPLOYMENT);
    expect(outcome.resourceVersion).toBe(2);
    expect(outcome.fencingToken).toBeGreaterThan(0);

    const requests = await env.db.query('SELECT agent_id, scope, action FROM arbiter.requests WHERE request_id = $1', [outcome.requestId]);
    expect(requests.rows).toEqual([{ agent_id: 'cli-agent', scope: DEPLOYMENT, action: 'restart' }]);
    const decisions = await env.db.query('SELECT status, final FROM arbiter.decisions WHERE request_id = $1 ORDER BY decided_at', [outcome.requestId]);
    expect(decisions.rows).toEqual([
      { status: 'ACCEPTED', final: false },
      { status: 'EXECUTED', final: true },
    ]);
    const executions = await env.db.query('SELECT phase FROM arbiter.executions WHERE request_id = $1 ORDER BY at', [outcome.requestId]);
    expect(executions.rows.map((r) => r.phase)).toEqual(['started', 'succeeded']);
    const pod = env.sim.fleet.observe(POD);
    expect(pod.version).toBe(2);
    expect(pod.appliedRequestIds).toContain(outcome.requestId);
  });

  it('garbage bytes from another client go to the dead-letter topic and the audit trail; the next request still executes', async () => {
    const topics = topicNames(env.prefix);
    const garbage = Buffer.from('definitely not avro \x00\x01\x02');
    const unknownSchema = Buffer.concat([Buffer.from([0, 0x7f, 0xff, 0xff, 0xf0]), Buffer.from('junk')]);
    await producer.send({
      topic: topics.requests,
      messages: [
        { key: DEPLOYMENT, value: garbage, headers: { origin: 'garbage-test' } },
        { key: DEPLOYMENT, value: unknownSchema },
      ],
    });

    const client = await env.client('after-garbage');
    const outcome = await client.submitAndWait({ agentId: 'after-garbage', resourceArn: POD, action: 'restart', params: { note: 'after' } }, { timeoutMs: 60_000 });
    expect(outcome.status).toBe('EXECUTED');

    const rows = await eventually(async () => {
      const { rows } = await env.db.query('SELECT error_code, error, record_value FROM arbiter.dead_letters ORDER BY kafka_offset');
      return rows.length === 2 ? rows : null;
    }, 30_000, 'two dead_letters rows');
    expect(rows.map((r) => r.error_code)).toEqual(['DECODE_FAILED', 'DECODE_FAILED']);
    expect(Buffer.compare(rows[0].record_value, garbage)).toBe(0);
    expect(rows[0].error).toMatch(/magic byte/);
    expect(rows[1].error).toMatch(/schema id/);

    // The dead-letter topic carries the raw bytes and the error in headers.
    const consumer = kafka.consumer({ groupId: `dlq-reader-${env.prefix}` });
    await consumer.connect();
    await consumer.subscribe({ topic: topics.deadLetter, fromBeginning: true });
    const seen: Array<{ value: Buffer | null; error: string; origin?: string }> = [];
    await consumer.run({
      eachMessage: async ({ message }) => {
        seen.push({ value: message.value, error: String(message.headers?.[HEADERS.error]), origin: message.headers?.origin?.toString() });
      },
    });
    await eventually(async () => seen.length >= 2, 30_000, 'two dead-letter records');
    await consumer.disconnect();
    expect(Buffer.compare(seen[0]!.value!, garbage)).toBe(0);
    expect(seen[0]!.error).toMatch(/magic byte/);
    expect(seen[0]!.origin).toBe('garbage-test');
  });

  it('a request keyed by something other than its scope is re-routed to its scope partition, recorded, and decided', async () => {
    const topics = topicNames(env.prefix);
    const serde = new Serde(endpoints.schemaRegistryUrl, topics);
    await serde.register();
    const partitions = env.config.kafka.requestPartitions;
    const scopePartition = partitionForKey(DEPLOYMENT, partitions);
    const wrongPartition = (scopePartition + 1) % partitions;
    const request = buildRequest({ agentId: 'foreign-client', resourceArn: `${DEPLOYMENT}/pod/api-1`, action: 'restart' });
    const client = await env.client('foreign-client');
    await producer.send({ topic: topics.requests, messages: [{ key: 'pod-api-1', partition: wrongPartition, value: await serde.encodeRequest(request) }] });
    const outcome = await client.awaitOutcome(request.requestId, { timeoutMs: 60_000 });
    expect(outcome.status).toBe('EXECUTED');
    const { rows } = await env.db.query('SELECT kafka_partition, rerouted_from FROM arbiter.requests WHERE request_id = $1', [request.requestId]);
    expect(rows).toEqual([{ kafka_partition: scopePartition, rerouted_from: wrongPartition }]);
    const rerouted = await env.db.query("SELECT detail FROM arbiter.decisions WHERE request_id = $1 AND status = 'REROUTED'", [request.requestId]);
    expect(rerouted.rows).toHaveLength(1);
  });

  it('a decoded request with an invalid ARN or an unknown action is REJECTED_INVALID with a reason', async () => {
    const client = await env.client('sloppy-agent');
    const badArn = await client.submitAndWait({ agentId: 'sloppy-agent', resourceArn: 'arn:sim:k8s::000000000000:cluster/prod/ns', action: 'restart' });
    expect(badArn.status).toBe('REJECTED_INVALID');
    expect(badArn.detail).toMatch(/invalid resourceArn/);
    const badAction = await client.submitAndWait({ agentId: 'sloppy-agent', resourceArn: POD, action: 'reboot-everything' });
    expect(badAction.status).toBe('REJECTED_INVALID');
    expect(badAction.detail).toMatch(/unknown action 'reboot-everything'/);
  });
});
