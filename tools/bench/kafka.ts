import { Kafka, logLevel, type Admin, type Message } from 'kafkajs';
import { topicNames, type TopicNames } from '../../src/index.ts';
import { progressBar } from './progress.ts';

export function benchKafka(brokers: string[], clientId: string): Kafka {
  return new Kafka({ clientId, brokers, logLevel: logLevel.NOTHING });
}

/** A topic whose records carry the broker's append time, whatever the producer stamped. */
const APPEND_TIME = { name: 'message.timestamp.type', value: 'LogAppendTime' };

export interface BenchTopics extends TopicNames {
  /** Where the bare consume→produce loop writes its one small record per input. */
  bareOut: string;
}

/**
 * Creates the run's topics up front (the workers find them and leave them alone), so the storm can
 * be loaded before any consumer exists and Arbiter and the bare loop read the very same records.
 */
export async function createBenchTopics(admin: Admin, prefix: string, partitions: number): Promise<BenchTopics> {
  const names = topicNames(prefix);
  const topics = { ...names, bareOut: `${prefix}.bare-out` };
  await admin.createTopics({
    waitForLeaders: true,
    topics: [
      // The broker stamps each request with its append time: the workers' latency (and the probes')
      // then runs from the append, as the issue defines it, not from the load generator's clock
      // before its send; the probe reports send → append on its own.
      { topic: topics.requests, numPartitions: partitions, replicationFactor: 1, configEntries: [APPEND_TIME] },
      // And each outcome: a probe's latency ends when the answer is on Kafka (published), not when
      // the worker handed it to its producer a round trip earlier.
      { topic: topics.outcomes, numPartitions: partitions, replicationFactor: 1, configEntries: [APPEND_TIME] },
      { topic: topics.observations, numPartitions: partitions, replicationFactor: 1 },
      { topic: topics.deadLetter, numPartitions: 1, replicationFactor: 1 },
      { topic: topics.bareOut, numPartitions: partitions, replicationFactor: 1 },
    ],
  });
  return topics;
}

/**
 * Deletes every topic of the run's prefix: those made here and those the workers made for
 * themselves (plan commands and events, inconsistencies), which a list of the bench's own missed.
 */
export async function deleteBenchTopics(admin: Admin, prefix: string): Promise<void> {
  const mine = (await admin.listTopics()).filter((t) => t.startsWith(`${prefix}.`));
  if (mine.length) await admin.deleteTopics({ topics: mine, timeout: 30_000 });
}

export interface LoadResult {
  records: number;
  bytes: number;
  seconds: number;
  recordsPerSecond: number;
}

/**
 * Loads records as fast as kafkajs allows: large sendBatch calls (partition chosen already), several
 * in flight, acks=-1. Not idempotent: the loader is not what is measured, and a retry duplicate
 * would only add a redelivery that Arbiter drops by requestId.
 */
export async function loadRecords(
  kafka: Kafka,
  topic: string,
  count: number,
  message: (j: number) => Message,
  options: { chunk?: number; inFlight?: number; label?: string; quiet?: boolean } = {},
): Promise<LoadResult> {
  const chunk = options.chunk ?? 5_000;
  const inFlight = options.inFlight ?? 4;
  const producer = kafka.producer({ allowAutoTopicCreation: false, idempotent: false });
  await producer.connect();
  const bar = options.quiet ? { update: () => {}, stop: () => {} } : progressBar(options.label ?? 'load', count, '{rate} rec/s');
  const started = performance.now();
  let next = 0;
  let done = 0;
  let bytes = 0;
  const lane = async (): Promise<void> => {
    while (next < count) {
      const from = next;
      const to = Math.min(count, from + chunk);
      next = to;
      const messages: Message[] = [];
      for (let j = from; j < to; j++) {
        const m = message(j);
        bytes += (m.value as Buffer).length + ((m.key as Buffer | undefined)?.length ?? 0);
        messages.push(m);
      }
      await producer.sendBatch({ acks: -1, topicMessages: [{ topic, messages }] });
      done += to - from;
      bar.update(done, { rate: Math.round(done / ((performance.now() - started) / 1000)) });
    }
  };
  try {
    await Promise.all(Array.from({ length: inFlight }, lane));
  } finally {
    bar.stop();
    await producer.disconnect();
  }
  const seconds = (performance.now() - started) / 1000;
  return { records: count, bytes, seconds, recordsPerSecond: count / seconds };
}

/** Committed offsets of a group against the topic's end offsets: total lag and how much it has committed. */
export async function groupLag(admin: Admin, groupId: string, topic: string): Promise<{ lag: number; committed: number; end: number }> {
  const [ends, committed] = await Promise.all([admin.fetchTopicOffsets(topic), admin.fetchOffsets({ groupId, topics: [topic] })]);
  const byPartition = new Map<number, number>();
  for (const p of committed[0]?.partitions ?? []) byPartition.set(p.partition, Math.max(0, Number(p.offset)));
  let lag = 0;
  let done = 0;
  let end = 0;
  for (const p of ends) {
    const high = Number(p.high);
    const at = byPartition.get(p.partition) ?? 0;
    end += high;
    done += at;
    lag += Math.max(0, high - at);
  }
  return { lag, committed: done, end };
}

/** Records ever written to a topic (sum of its partitions' end offsets; nothing is deleted during a run). */
export async function topicRecords(admin: Admin, topic: string): Promise<number> {
  const offsets = await admin.fetchTopicOffsets(topic);
  return offsets.reduce((sum, p) => sum + Number(p.high) - Number(p.low), 0);
}
