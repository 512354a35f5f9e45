/**
 * One process of the bare kafkajs consume→produce loop (the ceiling Arbiter is compared with):
 * the same consumer and producer settings as a worker (src/worker/worker.ts), the same chunking and
 * offset handling, but no decoding, no Postgres, no decisions — one small record out per record in.
 * Spawned by bare-loop.ts with its settings in ARBITER_BENCH_BARE_LOOP; prints one JSON line on exit.
 */

// First, as in every `arbiter` process: kafkajs with Arbiter's replacements of its grouping and
// Produce encoder (src/contract/kafkajs-patches.ts), so the ceiling runs the workers' producer code.
import '../../src/cli/index.ts';
import { Kafka, logLevel, Partitioners, type Message } from 'kafkajs';

interface BareLoopSettings {
  id: string;
  brokers: string[];
  groupId: string;
  topic: string;
  outTopic: string;
  partitionsConsumedConcurrently: number;
  chunk: number;
}

const settings = JSON.parse(process.env.ARBITER_BENCH_BARE_LOOP ?? '{}') as BareLoopSettings;
const kafka = new Kafka({ clientId: `bench-bare-${settings.id}`, brokers: settings.brokers, logLevel: logLevel.NOTHING });
// As the worker's: idempotent, one request in flight, murmur2 partitioner.
const producer = kafka.producer({
  idempotent: true,
  maxInFlightRequests: 1,
  allowAutoTopicCreation: false,
  createPartitioner: Partitioners.DefaultPartitioner,
});
const consumer = kafka.consumer({
  groupId: settings.groupId,
  sessionTimeout: 30_000,
  heartbeatInterval: 3_000,
  maxWaitTimeInMs: 500, // as the worker (kafka.fetchMaxWaitMs); a fetch returns as soon as records are there
  allowAutoTopicCreation: false,
});

let firstAt = 0;
let lastAt = 0;
let consumed = 0;

await producer.connect();
await consumer.connect();
await consumer.subscribe({ topic: settings.topic, fromBeginning: true });
consumer.on(consumer.events.GROUP_JOIN, () => process.stdout.write(`${JSON.stringify({ joined: true })}\n`));
await consumer.run({
  eachBatchAutoResolve: false,
  autoCommit: true,
  partitionsConsumedConcurrently: settings.partitionsConsumedConcurrently,
  eachBatch: async ({ batch, resolveOffset, heartbeat, isRunning, isStale }) => {
    if (!firstAt) firstAt = Date.now();
    for (let i = 0; i < batch.messages.length; i += settings.chunk) {
      if (!isRunning() || isStale()) return;
      const chunk = batch.messages.slice(i, i + settings.chunk);
      const out: Message[] = chunk.map((m) => ({ key: m.key, value: Buffer.from(m.offset), partition: batch.partition }));
      await producer.send({ topic: settings.outTopic, acks: -1, messages: out });
      resolveOffset(chunk[chunk.length - 1]!.offset);
      await heartbeat();
      consumed += chunk.length;
      lastAt = Date.now();
    }
  },
});

const finish = async () => {
  await consumer.disconnect().catch(() => {});
  await producer.disconnect().catch(() => {});
  process.stdout.write(`${JSON.stringify({ id: settings.id, firstAt, lastAt, consumed })}\n`);
  process.exit(0);
};
process.once('SIGTERM', () => void finish());
process.once('SIGINT', () => void finish());
