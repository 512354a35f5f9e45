import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { Kafka, logLevel, type Producer } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildRequest } from '../../src/contract/request.ts';
import { Serde } from '../../src/contract/serde.ts';
import { topicNames } from '../../src/contract/topics.ts';
import { deploymentArn, podArn } from '../../tools/fleet/index.ts';
import { endpoints, eventually, startTestEnv, type TestEnv } from '../support/harness.ts';

/**
 * The cause of a dead letter fixed, then `arbiter dead-letters replay`: a record framed with a
 * schema id the registry does not know yet is dead-lettered; once that id exists, the replayed
 * record is decided and executed like any other. Runs on the fault tests' private registry, whose
 * ids nobody else advances, so the next id is known.
 */

const exec = promisify(execFile);
const DEPLOYMENT = deploymentArn('dl', 'svc-0');
const REQUEST_SCHEMA = JSON.parse(readFileSync(new URL('../../schemas/remediation-request.avsc', import.meta.url), 'utf8')) as Record<string, unknown>;

describe('arbiter dead-letters list|replay', () => {
  let env: TestEnv;
  let producer: Producer;

  beforeAll(async () => {
    env = await startTestEnv({
      workers: 1,
      latencyScale: 0.01,
      fleet: { deployments: [{ namespace: 'dl', name: 'svc-0', replicas: 2, minAvailable: 1, revision: 'v1' }], restartSettleMs: 0 },
    });
    producer = new Kafka({ clientId: 'dl-producer', brokers: [endpoints.kafkaBrokers], logLevel: logLevel.NOTHING }).producer();
    await producer.connect();
  });
  afterAll(async () => {
    await producer?.disconnect();
    await env?.stop();
  });

  const cli = async (...args: string[]) => {
    // The product CLI, configured like an operator's shell: this environment's topics and database.
    const { stdout } = await exec(process.execPath, ['bin/arbiter.js', 'dead-letters', ...args, '--json'], {
      env: { ...process.env, KAFKA_BROKERS: endpoints.kafkaBrokers, DATABASE_URL: env.databaseUrl, ARBITER_TOPIC_PREFIX: env.prefix },
    });
    return JSON.parse(stdout) as unknown;
  };

  it('lists the dead letter, replays it once its cause is fixed, and the request executes', async () => {
    const topics = topicNames(env.prefix);
    const request = buildRequest({ agentId: 'dl-agent', resourceArn: podArn(DEPLOYMENT, 'svc-0', 0), action: 'restart', params: {} });
    const good = await new Serde(endpoints.schemaRegistryUrl, topics).encodeRequest(request);
    const latest = await registerSchema(`${env.prefix}-probe-value`, { type: 'record', name: 'Probe', fields: [{ name: 'n', type: 'int' }] });
    // The same body under the next id, which no schema has yet: undecodable today.
    const framed = Buffer.from(good);
    framed.writeUInt32BE(latest + 1, 1);
    await producer.send({ topic: topics.requests, acks: -1, messages: [{ key: DEPLOYMENT, value: framed, headers: { 'trace-id': 'abc-123' } }] });

    const listed = await eventually(async () => {
      const rows = (await cli('list')) as Array<{ id: string; errorCode: string; replayedAt: string | null; headers: string[] }>;
      return rows.length === 1 ? rows : undefined;
    }, 60_000, 'the record dead-lettered');
    expect(listed[0]).toMatchObject({ errorCode: 'DECODE_FAILED', replayedAt: null, headers: ['trace-id'] });
    const id = listed[0]!.id;

    // The cause fixed: the id now names a schema the request body was written with.
    const fixedId = await registerSchema(`${env.prefix}-fixed-value`, { ...REQUEST_SCHEMA, doc: `replay test ${env.prefix}` });
    expect(fixedId).toBe(latest + 1);

    expect(await cli('replay', '--since', '1h', '--dry-run')).toEqual({ replayed: [id], dryRun: true });
    expect(await cli('replay', id)).toEqual({ replayed: [id], dryRun: false });
    const client = await env.client('dl-watcher');
    const outcome = await client.awaitOutcome(request.requestId, { timeoutMs: 60_000 });
    expect(outcome.status).toBe('EXECUTED');
    expect(env.sim.fleet.stats().executions.restart).toBe(1);

    const after = (await cli('list')) as Array<{ id: string; replayedAt: string | null; replayCount: number }>;
    expect(after).toHaveLength(1);
    expect(after[0]).toMatchObject({ id, replayCount: 1 });
    expect(after[0]!.replayedAt).not.toBeNull();
    // By time range, a record already replayed is not sent again.
    expect(await cli('replay', '--since', '1h')).toEqual({ replayed: [], dryRun: false });

    // What went back on the topic: its own key and headers, none of the error headers, and where it came from.
    const replayedRecord = await lastRecord(topics.requests, 'arbiter-replay-of');
    expect(replayedRecord.key).toBe(DEPLOYMENT);
    expect(Object.keys(replayedRecord.headers).sort()).toEqual(['arbiter-replay-of', 'trace-id']);
    expect(replayedRecord.headers['trace-id']).toBe('abc-123');
  });

  it('refuses an unknown id and a replay with no selection, naming the problem', async () => {
    await expect(cli('replay', '999999')).rejects.toMatchObject({ stderr: expect.stringMatching(/no dead letter with id 999999/) });
    await expect(cli('replay')).rejects.toMatchObject({ stderr: expect.stringMatching(/ids, or a time range/) });
  });
});

async function registerSchema(subject: string, schema: unknown): Promise<number> {
  const response = await fetch(`${endpoints.schemaRegistryUrl}/subjects/${encodeURIComponent(subject)}/versions`, {
    method: 'POST',
    headers: { 'content-type': 'application/vnd.schemaregistry.v1+json' },
    body: JSON.stringify({ schema: JSON.stringify(schema) }),
  });
  const body = (await response.json()) as { id?: number };
  if (!response.ok || typeof body.id !== 'number') throw new Error(`registering ${subject}: HTTP ${response.status} ${JSON.stringify(body)}`);
  return body.id;
}

/** The newest record of the topic carrying `header`, read with a throwaway consumer group. */
async function lastRecord(topic: string, header: string): Promise<{ key: string; headers: Record<string, string> }> {
  const kafka = new Kafka({ clientId: 'dl-reader', brokers: [endpoints.kafkaBrokers], logLevel: logLevel.NOTHING });
  const consumer = kafka.consumer({ groupId: `dl-reader-${Date.now()}` });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  let found: { key: string; headers: Record<string, string> } | undefined;
  await consumer.run({
    eachMessage: async ({ message }) => {
      if (message.headers?.[header] === undefined) return;
      const headers = Object.fromEntries(Object.entries(message.headers).map(([k, v]) => [k, String(v)]));
      found = { key: message.key?.toString() ?? '', headers };
    },
  });
  try {
    return await eventually(async () => found, 30_000, `a record with header ${header}`);
  } finally {
    await consumer.disconnect();
  }
}
