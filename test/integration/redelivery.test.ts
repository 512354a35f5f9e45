import { Kafka, logLevel, Partitioners } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuditStore } from '../../src/audit/index.ts';
import { coalesceKey } from '../../src/coalesce/index.ts';
import { buildRequest } from '../../src/contract/request.ts';
import { Serde } from '../../src/contract/serde.ts';
import { topicNames } from '../../src/contract/topics.ts';
import { createPool } from '../../src/db/index.ts';
import { deploymentArn, podArn } from '../../tools/fleet/index.ts';
import { partitionForKey } from '../../src/routing/index.ts';
import { endpoints, startTestEnv, type TestEnv } from '../support/harness.ts';

const API = deploymentArn('payments', 'api');
const POD = podArn(API, 'api', 3);

/**
 * After a rebalance the previous owner's last batch may reach Postgres after the new owner rebuilt
 * the partition; Kafka then redelivers those records to the new owner. They must not be decided
 * twice — and must not be forgotten either.
 */
describe('a record decided by a previous owner after this owner recovered the partition', () => {
  let env: TestEnv;
  beforeAll(async () => {
    env = await startTestEnv({ workers: 1, partitions: 3 });
  });
  afterAll(async () => env?.stop());

  it('is adopted: executed once, and a later duplicate coalesces into it', async () => {
    const topics = topicNames(env.prefix);
    const partition = partitionForKey(API, env.config.kafka.requestPartitions);
    const request = buildRequest({ agentId: 'agent-before-rebalance', resourceArn: POD, action: 'restart' });

    // What the previous owner left: the request accepted in Postgres, its offset never committed.
    const pool = createPool(env.databaseUrl, 2);
    await new AuditStore(pool, 'previous-owner').recordArrivals({
      arrivals: [
        {
          request,
          scope: API,
          topic: topics.requests,
          partition,
          offset: '0',
          reroutedFrom: null,
          coalesceKey: coalesceKey(POD, 'restart', {}),
          decision: { status: 'ACCEPTED', rule: 'accept', notBefore: Date.now(), detail: 'accepted into its scope queue' },
        },
      ],
      deadLetters: [],
    });
    await pool.end();

    // Kafka redelivers the record to the current owner.
    const agent = await env.client('observer');
    const serde = new Serde(endpoints.schemaRegistryUrl, topics);
    const kafka = new Kafka({ clientId: 'redelivery', brokers: [endpoints.kafkaBrokers], logLevel: logLevel.NOTHING });
    const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
    await producer.connect();
    await producer.send({ topic: topics.requests, messages: [{ key: API, value: await serde.encodeRequest(request) }] });
    await producer.disconnect();

    const outcome = await agent.awaitOutcome(request.requestId, { timeoutMs: 60_000 });
    expect(outcome.status).toBe('EXECUTED');
    const duplicate = await agent.submitAndWait({ agentId: 'agent-after', resourceArn: POD, action: 'restart' }, { timeoutMs: 60_000 });
    expect(duplicate.status).toBe('COALESCED');
    expect(duplicate.primaryRequestId).toBe(request.requestId);
    expect(env.sim.fleet.observe(POD).version).toBe(2);
    const { rows } = await env.db.query('SELECT count(*)::int AS n FROM arbiter.decisions WHERE request_id = $1 AND final', [request.requestId]);
    expect(rows[0].n).toBe(1);
  });
});
