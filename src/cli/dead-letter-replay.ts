import { Kafka, logLevel } from 'kafkajs';
import type pg from 'pg';
import { markReplayed, type DeadLetter } from '../audit/index.ts';
import type { KafkaSecurityOptions } from '../contract/kafka-client.ts';
import { HEADERS } from '../contract/topics.ts';

/** Names the dead letter a replayed record came from, for whoever reads the topic later. */
export const REPLAY_OF_HEADER = 'arbiter-replay-of';

/** What the worker adds when it dead-letters a record: never sent back with it. */
const ERROR_HEADERS = new Set<string>([HEADERS.error, HEADERS.errorCode, HEADERS.sourceTopic, HEADERS.sourcePartition, HEADERS.sourceOffset]);

/**
 * Sends each dead letter back to the requests topic — its own key, value and headers, on its own
 * partition (where its scope lives) — then marks it replayed. Sent before marked: a crash in
 * between replays it again on the next run, which the worker's request-id idempotency absorbs.
 */
export async function replayDeadLetters(input: { db: pg.Pool; brokers: string[]; security?: KafkaSecurityOptions; topic: string; letters: DeadLetter[] }): Promise<void> {
  if (input.letters.length === 0) return;
  const kafka = new Kafka({ clientId: 'arbiter-dead-letter-replay', brokers: input.brokers, logLevel: logLevel.WARN, ...input.security });
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  try {
    // Batches bounded in count, so one send stays well under the broker's request size limit.
    for (let start = 0; start < input.letters.length; start += 100) {
      const batch = input.letters.slice(start, start + 100);
      await producer.send({
        topic: input.topic,
        acks: -1,
        messages: batch.map((letter) => ({
          key: letter.key,
          value: letter.value,
          partition: letter.partition,
          headers: {
            ...Object.fromEntries(Object.entries(letter.headers).filter(([name]) => !ERROR_HEADERS.has(name))),
            [REPLAY_OF_HEADER]: `${letter.topic}/${letter.partition}/${letter.offset}`,
          },
        })),
      });
      await markReplayed(input.db, batch.map((letter) => letter.id));
    }
  } finally {
    await producer.disconnect();
  }
}
