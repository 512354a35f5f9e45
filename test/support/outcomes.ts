import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Kafka, logLevel } from 'kafkajs';
import type { RemediationOutcome } from '../../src/agent-sdk/index.ts';
import { Serde } from '../../src/contract/serde.ts';
import { topicNames } from '../../src/contract/topics.ts';
import { endpoints } from './harness.ts';

/**
 * Every outcome published so far on an installation's outcomes topic, in order: a fresh consumer
 * group reads from the beginning up to the end offsets taken first. For counting answers per
 * request, which the SDK's watcher (first final answer wins) cannot do.
 */
export async function readOutcomes(topicPrefix: string, timeoutMs = 30_000): Promise<RemediationOutcome[]> {
  const topics = topicNames(topicPrefix);
  const kafka = new Kafka({ clientId: `read-outcomes-${randomUUID().slice(0, 8)}`, brokers: [endpoints.kafkaBrokers], logLevel: logLevel.NOTHING });
  const serde = new Serde(endpoints.schemaRegistryUrl, topics);
  const admin = kafka.admin();
  await admin.connect();
  const ends = await admin.fetchTopicOffsets(topics.outcomes);
  await admin.disconnect();
  const remaining = new Map(ends.map((e) => [e.partition, Number(e.high)]));
  const seen: RemediationOutcome[] = [];
  const consumer = kafka.consumer({ groupId: `read-outcomes-${randomUUID()}` });
  await consumer.connect();
  await consumer.subscribe({ topic: topics.outcomes, fromBeginning: true });
  try {
    const done = new Promise<void>((resolve) => {
      const check = () => [...remaining.values()].every((high) => high === 0) && resolve();
      check();
      void consumer.run({
        eachMessage: async ({ partition, message }) => {
          seen.push(await serde.decodeOutcome(message.value));
          if (Number(message.offset) + 1 >= (remaining.get(partition) ?? 0)) remaining.set(partition, 0);
          check();
        },
      });
    });
    await Promise.race([done, sleep(timeoutMs).then(() => Promise.reject(new Error(`outcomes not read within ${timeoutMs} ms`)))]);
  } finally {
    await consumer.disconnect();
  }
  return seen;
}

/** Final outcomes grouped by request id. */
export function finalsByRequest(outcomes: RemediationOutcome[]): Map<string, RemediationOutcome[]> {
  const byId = new Map<string, RemediationOutcome[]>();
  for (const o of outcomes.filter((x) => x.final)) byId.set(o.requestId, [...(byId.get(o.requestId) ?? []), o]);
  return byId;
}
