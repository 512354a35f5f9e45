import { randomUUID } from 'node:crypto';
import { Kafka, logLevel, type Consumer } from 'kafkajs';
import type { PlanEvent } from '../../src/contract/plan.ts';
import { Serde } from '../../src/contract/serde.ts';
import { topicNames } from '../../src/contract/topics.ts';
import { endpoints } from './endpoints.ts';
import { eventually } from './harness.ts';

/**
 * Reads the plan-events topic raw (its own group, from the beginning): every record published,
 * in the order each partition holds it, duplicates included — the SDK deduplicates, this does not.
 */
export class PlanEventTap {
  readonly records: PlanEvent[] = [];
  private readonly consumer: Consumer;
  private readonly serde: Serde;
  private readonly topic: string;

  constructor(prefix: string) {
    const topics = topicNames(prefix);
    this.topic = topics.planEvents;
    this.serde = new Serde(endpoints.schemaRegistryUrl, topics);
    const kafka = new Kafka({ clientId: `plan-tap-${prefix}`, brokers: [endpoints.kafkaBrokers], logLevel: logLevel.NOTHING });
    this.consumer = kafka.consumer({ groupId: `plan-tap-${prefix}-${randomUUID().slice(0, 8)}`, maxWaitTimeInMs: 50 });
  }

  async start(): Promise<this> {
    await this.consumer.connect();
    await this.consumer.subscribe({ topic: this.topic, fromBeginning: true });
    await this.consumer.run({
      autoCommit: false,
      eachMessage: async ({ message }) => {
        this.records.push(await this.serde.decodePlanEvent(message.value));
      },
    });
    return this;
  }

  of(planId: string): PlanEvent[] {
    return this.records.filter((e) => e.planId === planId);
  }

  async waitForEnd(planId: string, timeoutMs = 60_000): Promise<PlanEvent[]> {
    return eventually(async () => {
      const events = this.of(planId);
      return events.some((e) => ['SUCCEEDED', 'FAILED', 'CANCELLED', 'REJECTED'].includes(e.type)) && events;
    }, timeoutMs, `the end of plan ${planId} on the plan-events topic`);
  }

  async stop(): Promise<void> {
    await this.consumer.disconnect().catch(() => {});
  }
}
