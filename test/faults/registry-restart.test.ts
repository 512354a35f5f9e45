import { readFileSync } from 'node:fs';
import { Kafka, logLevel, Partitioners } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Serde } from '../../src/contract/serde.ts';
import { topicNames } from '../../src/contract/topics.ts';
import { restartRegistry } from '../../tools/stack/index.ts';
import { endpoints, eventually } from '../support/harness.ts';
import { startStorm, type Storm } from './storm.ts';

/**
 * The registry restarted during a storm, and records framed with a schema id the workers have not
 * seen yet arriving while it is down: each worker must fetch that schema from a registry that does
 * not answer. Such a record must wait, never be dead-lettered; and after the restart the id still
 * exists (SQL storage), so every one of them executes.
 */

const TOTAL = 2_000;

describe('registry restarted during a storm of 2,000 over 2 workers', () => {
  let storm: Storm;

  beforeAll(async () => {
    storm = await startStorm(TOTAL);
  });
  afterAll(async () => {
    await storm?.stop();
  });

  it('no request dead-lettered because of it; every request a final outcome; nothing executed twice', async () => {
    // A second writer schema for the same records (documentation only, identical encoding), unseen by
    // the workers; the second half is framed with it, encoded now while the registry answers.
    const newId = await registerDocVariant(`${storm.env.prefix}.requests-value`, storm.env.prefix);
    const serde = new Serde(endpoints.schemaRegistryUrl, topicNames(storm.env.prefix));
    const secondHalf = await Promise.all(
      storm.requests.slice(TOTAL / 2).map(async (request, k) => {
        const value = await serde.encodeRequest(request);
        value.writeUInt32BE(newId, 1);
        return { key: storm.keyOf(TOTAL / 2 + k), value };
      }),
    );
    const producer = new Kafka({ clientId: 'registry-fault', brokers: [endpoints.kafkaBrokers], logLevel: logLevel.NOTHING }).producer({
      createPartitioner: Partitioners.DefaultPartitioner,
    });
    await producer.connect();

    await storm.send(0, TOTAL / 2);
    await eventually(async () => (await storm.countFinal()) >= 200, 60_000, 'the storm under way');
    const startedAt = Date.now();
    const restart = restartRegistry();
    await eventually(async () => ((await registryAnswers()) ? undefined : true), 30_000, 'the registry down');
    for (let i = 0; i < secondHalf.length; i += 500) {
      await producer.send({ topic: topicNames(storm.env.prefix).requests, acks: -1, messages: secondHalf.slice(i, i + 500) });
    }
    await producer.disconnect();
    const { stopMs, startMs } = await restart;
    const endedAt = Date.now();
    console.log(`registry restart: stopped in ${stopMs} ms, healthy ${startMs} ms after the new start; second half framed with new schema id ${newId}`);
    const report = await storm.finish('registry restarted', { startedAt, endedAt });
    expect(report.firstDecisionAfterMs).toBeLessThan(60_000);
  });
});

async function registryAnswers(): Promise<boolean> {
  try {
    return (await fetch(`${endpoints.schemaRegistryUrl}/subjects`, { signal: AbortSignal.timeout(1_000) })).ok;
  } catch {
    return false;
  }
}

async function registerDocVariant(subject: string, tag: string): Promise<number> {
  const schema = JSON.parse(readFileSync(new URL('../../schemas/remediation-request.avsc', import.meta.url), 'utf8')) as Record<string, unknown>;
  const response = await fetch(`${endpoints.schemaRegistryUrl}/subjects/${encodeURIComponent(`${subject}-variant`)}/versions`, {
    method: 'POST',
    headers: { 'content-type': 'application/vnd.schemaregistry.v1+json' },
    body: JSON.stringify({ schema: JSON.stringify({ ...schema, doc: `variant ${tag}` }) }),
  });
  const body = (await response.json()) as { id?: number };
  if (!response.ok || typeof body.id !== 'number') throw new Error(`registering a schema variant: HTTP ${response.status} ${JSON.stringify(body)}`);
  return body.id;
}
