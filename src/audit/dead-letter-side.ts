import type { KafkaMessage, Message, Producer } from 'kafkajs';
import { ArbiterError, errorMessage } from '../contract/errors.ts';
import { HEADERS } from '../contract/topics.ts';
import type { DeadLetterRow } from './rows.ts';

/**
 * A record from a side topic (plan commands, observations) that cannot be decoded: the record to
 * put on the dead-letter topic (its own bytes, with the error in headers) and the audit row.
 * The requests topic has its own path (worker/intake.ts), which batches these per chunk.
 */
export function deadLetterOf(topic: string, partition: number, message: KafkaMessage, error: unknown): { record: Message; row: DeadLetterRow } {
  const code = error instanceof ArbiterError ? error.code : 'DECODE_FAILED';
  const text = errorMessage(error);
  return {
    record: {
      key: message.key,
      value: message.value,
      headers: { [HEADERS.error]: text, [HEADERS.errorCode]: code, [HEADERS.sourceTopic]: topic, [HEADERS.sourcePartition]: String(partition), [HEADERS.sourceOffset]: message.offset },
    },
    row: {
      topic,
      partition,
      offset: message.offset,
      key: message.key,
      value: message.value,
      headers: Object.fromEntries(Object.entries(message.headers ?? {}).map(([k, v]) => [k, (Array.isArray(v) ? v[0] : v)?.toString('base64') ?? ''])),
      errorCode: code,
      error: text,
    },
  };
}

/** What dead-lettering a side-topic record touches: the dead-letter topic, the audit trail, the counter. */
export interface SideDeadLetterContext {
  producer: Producer;
  deadLetterTopic: string;
  audit: { recordArrivals(input: { arrivals: []; deadLetters: DeadLetterRow[] }): Promise<unknown> };
  countDeadLetter(code: string): void;
}

/** Sends an undecodable side-topic record to the dead-letter topic and the audit trail; returns its error code. */
export async function deadLetterSideRecord(ctx: SideDeadLetterContext, topic: string, partition: number, message: KafkaMessage, error: unknown): Promise<string> {
  const { record, row } = deadLetterOf(topic, partition, message, error);
  await ctx.producer.send({ topic: ctx.deadLetterTopic, acks: -1, messages: [record] });
  await ctx.audit.recordArrivals({ arrivals: [], deadLetters: [row] });
  ctx.countDeadLetter(row.errorCode);
  return row.errorCode;
}
