import { randomUUID } from 'node:crypto';
import type { Kafka, KafkaMessage } from 'kafkajs';

/** How far back a tail starts: an answer published between a submit and its wait is never missed. */
const LOOK_BACK_MS = 5_000;

/**
 * Follows every partition of a topic from shortly before it started, in a consumer group of its
 * own that commits nothing: how an agent watches for answers (outcomes, plan events).
 */
export class TopicTail {
  private readonly consumer;
  private readonly admin;
  private ready: Promise<void> | undefined;

  constructor(
    kafka: Kafka,
    private readonly topic: string,
    private readonly onMessage: (message: KafkaMessage) => Promise<void>,
  ) {
    this.consumer = kafka.consumer({ groupId: `arbiter-sdk-${randomUUID()}`, maxWaitTimeInMs: 50, allowAutoTopicCreation: false });
    this.admin = kafka.admin();
  }

  start(): Promise<void> {
    this.ready ??= this.run();
    return this.ready;
  }

  private async run(): Promise<void> {
    const since = Date.now() - LOOK_BACK_MS;
    await this.admin.connect();
    await this.consumer.connect();
    await this.consumer.subscribe({ topic: this.topic, fromBeginning: false });
    const joined = new Promise<void>((resolve) => {
      this.consumer.on(this.consumer.events.GROUP_JOIN, () => resolve());
    });
    await this.consumer.run({
      autoCommit: false,
      eachBatch: async ({ batch }) => {
        for (const message of batch.messages) await this.onMessage(message);
      },
    });
    await joined;
    const offsets = await this.admin.fetchTopicOffsetsByTimestamp(this.topic, since);
    const latest = await this.admin.fetchTopicOffsets(this.topic);
    for (const { partition, offset } of offsets) {
      const high = latest.find((l) => l.partition === partition)?.high ?? '0';
      this.consumer.seek({ topic: this.topic, partition, offset: offset === '-1' ? high : offset });
    }
  }

  async close(): Promise<void> {
    await this.consumer.disconnect().catch(() => {});
    await this.admin.disconnect().catch(() => {});
  }
}
