import type { Admin } from 'kafkajs';
import type { ArbiterConfig } from '../config/index.ts';
import { topicNames } from '../contract/topics.ts';

/** Creates Arbiter's topics when absent and returns the request topic's partition count. */
export async function ensureTopics(admin: Admin, config: Readonly<ArbiterConfig>): Promise<number> {
  const names = topicNames(config.kafka.topicPrefix);
  const partitions = config.kafka.requestPartitions;
  const replicationFactor = config.kafka.replicationFactor;
  const existing = new Set(await admin.listTopics());
  const wanted = [
    { topic: names.requests, numPartitions: partitions },
    { topic: names.outcomes, numPartitions: partitions },
    { topic: names.observations, numPartitions: partitions },
    { topic: names.deadLetter, numPartitions: 1 },
    { topic: names.planCommands, numPartitions: partitions },
    { topic: names.planEvents, numPartitions: partitions },
    { topic: names.inconsistencies, numPartitions: 1 },
  ].filter((t) => !existing.has(t.topic));
  if (wanted.length) {
    await admin.createTopics({ topics: wanted.map((t) => ({ ...t, replicationFactor })), waitForLeaders: true }).catch((error: Error) => {
      // Another worker created it first.
      if (!/already exists/i.test(error.message)) throw error;
    });
  }
  const metadata = await admin.fetchTopicMetadata({ topics: [names.requests] });
  return metadata.topics[0]!.partitions.length;
}
