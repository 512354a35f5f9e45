import { Kafka, logLevel, Partitioners, type Producer } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RemediationOutcome } from '../../src/agent-sdk/index.ts';
import { buildRequest, type RemediationRequest } from '../../src/contract/request.ts';
import { Serde } from '../../src/contract/serde.ts';
import { topicNames } from '../../src/contract/topics.ts';
import { deploymentArn, podArn } from '../../tools/fleet/index.ts';
import { endpoints, eventually, startTestEnv, type TestEnv } from '../support/harness.ts';
import { restartPostgres } from '../support/postgres-control.ts';

/**
 * PostgreSQL restarted in the middle of a storm over two workers: both keep running, every request
 * gets exactly one final outcome, nothing runs twice. The time to recover is measured.
 */

const DEPLOYMENTS = Array.from({ length: 20 }, (_, i) => deploymentArn('storm', `svc-${i}`));
const TOTAL = 5_000;

describe('PostgreSQL restarted during a 5,000-request storm', () => {
  let env: TestEnv;
  let producer: Producer;
  let serde: Serde;

  beforeAll(async () => {
    env = await startTestEnv({
      workers: 2,
      latencyScale: 0.01,
      fleet: {
        deployments: DEPLOYMENTS.map((_, i) => ({ namespace: 'storm', name: `svc-${i}`, replicas: 2, minAvailable: 1, revision: 'v1' })),
        restartSettleMs: 0,
      },
      // A short lease, so that if a worker did die the survivor would not wait 5 minutes for its locks.
      config: { deferral: { recheckMs: 100, maxDeferMs: 600_000 }, locks: { ttlMs: 5_000, reaperIntervalMs: 1_000 } },
    });
    const kafka = new Kafka({ clientId: 'storm-producer', brokers: [endpoints.kafkaBrokers], logLevel: logLevel.NOTHING });
    producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
    await producer.connect();
    serde = new Serde(endpoints.schemaRegistryUrl, topicNames(env.prefix));
  });
  afterAll(async () => {
    await producer?.disconnect();
    await env?.stop();
  });

  it('both workers survive; 0 requests without a final outcome; 0 executed twice', { timeout: 300_000 }, async () => {
    const requests: RemediationRequest[] = Array.from({ length: TOTAL }, (_, i) =>
      buildRequest({ agentId: `agent-${i % 9}`, resourceArn: podArn(DEPLOYMENTS[i % 20]!, `svc-${i % 20}`, 0), action: 'restart', params: { n: String(i) } }),
    );
    const client = await env.client('storm-watcher');
    const answers = requests.map((r) => client.awaitOutcome(r.requestId, { timeoutMs: 240_000 }));
    const send = async (batch: RemediationRequest[]) =>
      producer.send({
        topic: topicNames(env.prefix).requests,
        acks: -1,
        messages: await Promise.all(batch.map(async (r) => ({ key: DEPLOYMENTS[requests.indexOf(r) % 20]!, value: await serde.encodeRequest(r) }))),
      });

    // Half the storm, then the restart while it is being worked off, then the other half.
    await send(requests.slice(0, TOTAL / 2));
    await eventually(async () => (await countFinal(env)) >= 200, 60_000, 'the storm under way');
    const restartAt = Date.now();
    const restart = await restartPostgres();
    await send(requests.slice(TOTAL / 2));
    const progress = setInterval(() => {
      void countFinal(env).then((n) => console.log(`${Date.now() - restartAt} ms after the restart: ${n} final`), (e: Error) => console.log(e.message));
    }, 10_000);
    progress.unref();

    const firstAfter = await eventually(async () => {
      const { rows } = await env.db.query('SELECT min(decided_at) AS at FROM arbiter.decisions WHERE final AND decided_at > to_timestamp($1 / 1000.0)', [restartAt + restart.tookMs]);
      return rows[0]?.at as Date | undefined;
    }, 120_000, 'a decision after the restart');
    const outcomes: RemediationOutcome[] = await Promise.all(answers);
    clearInterval(progress);
    console.log(
      `postgres restart: pg_ctlcluster took ${restart.tookMs} ms; first final decision ${firstAfter.getTime() - restartAt - restart.tookMs} ms after it was back; ` +
        `storm of ${TOTAL} done ${Date.now() - restartAt} ms after the restart began`,
    );

    expect(env.workers.map((w) => w.running())).toEqual([true, true]);
    for (const w of env.workers) expect(w.output()).not.toMatch(/Unhandled 'error' event|consumer crashed/);
    expect(outcomes.filter((o) => o.status !== 'EXECUTED').map((o) => `${o.status}: ${o.detail}`)).toEqual([]);
    const { rows } = await env.db.query('SELECT count(*)::int AS n, count(DISTINCT request_id)::int AS distinct_ids FROM arbiter.decisions WHERE final');
    expect(rows[0]).toEqual({ n: TOTAL, distinct_ids: TOTAL });
    expect(env.sim.fleet.stats().executions.restart).toBe(TOTAL);
    expect(env.sim.fleet.violations().counts.duplicate_execution).toBe(0);
  });
});

async function countFinal(env: TestEnv): Promise<number> {
  const { rows } = await env.db.query('SELECT count(*)::int AS n FROM arbiter.decisions WHERE final');
  return rows[0].n;
}
