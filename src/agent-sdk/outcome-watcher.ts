import { randomUUID } from 'node:crypto';
import type { Admin, Consumer, Kafka } from 'kafkajs';
import { ArbiterError } from '../contract/errors.ts';
import type { RemediationOutcome } from '../contract/outcome.ts';
import type { Serde } from '../contract/serde.ts';

interface Waiter {
  resolve: (outcome: RemediationOutcome) => void;
  reject: (error: Error) => void;
  timer: NodeJS.Timeout;
  onProgress?: (outcome: RemediationOutcome) => void;
}

/** Remembered final outcomes, so awaiting one that already arrived returns at once. */
const REMEMBERED = 50_000;

/**
 * Follows the outcomes topic from shortly before it started, so an outcome published between
 * `submit` and `awaitOutcome` is never missed. Each watcher is its own consumer group (it must see
 * every partition) and commits nothing.
 */
export class OutcomeWatcher {
  private readonly consumer: Consumer;
  private readonly admin: Admin;
  private readonly waiters = new Map<string, Waiter[]>();
  private readonly finals = new Map<string, RemediationOutcome>();
  private ready: Promise<void> | undefined;

  constructor(
    kafka: Kafka,
    private readonly serde: Serde,
    private readonly topic: string,
  ) {
    this.consumer = kafka.consumer({ groupId: `arbiter-sdk-${randomUUID()}`, maxWaitTimeInMs: 50, allowAutoTopicCreation: false });
    this.admin = kafka.admin();
  }

  start(): Promise<void> {
    this.ready ??= this.run();
    return this.ready;
  }

  private async run(): Promise<void> {
    const since = Date.now() - 5_000;
    await this.admin.connect();
    await this.consumer.connect();
    await this.consumer.subscribe({ topic: this.topic, fromBeginning: false });
    const joined = new Promise<void>((resolve) => {
      this.consumer.on(this.consumer.events.GROUP_JOIN, () => resolve());
    });
    await this.consumer.run({
      autoCommit: false,
      eachBatch: async ({ batch }) => {
        for (const message of batch.messages) {
          try {
            this.deliver(await this.serde.decodeOutcome(message.value));
          } catch {
            // Not ours to judge: a record we cannot decode is ignored by an agent.
          }
        }
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

  private deliver(outcome: RemediationOutcome): void {
    const waiters = this.waiters.get(outcome.requestId);
    if (!outcome.final) {
      for (const w of waiters ?? []) w.onProgress?.(outcome);
      return;
    }
    if (this.finals.has(outcome.requestId)) return; // a republished duplicate
    this.finals.set(outcome.requestId, outcome);
    if (this.finals.size > REMEMBERED) this.finals.delete(this.finals.keys().next().value!);
    if (!waiters) return;
    this.waiters.delete(outcome.requestId);
    for (const w of waiters) {
      clearTimeout(w.timer);
      w.resolve(outcome);
    }
  }

  /** The request's final outcome; rejects with TIMEOUT after `timeoutMs`. */
  async wait(requestId: string, timeoutMs: number, onProgress?: (outcome: RemediationOutcome) => void): Promise<RemediationOutcome> {
    await this.start();
    const known = this.finals.get(requestId);
    if (known) return known;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        const list = (this.waiters.get(requestId) ?? []).filter((w) => w.timer !== timer);
        if (list.length) this.waiters.set(requestId, list);
        else this.waiters.delete(requestId);
        reject(new ArbiterError('TIMEOUT', `no final outcome for ${requestId} within ${timeoutMs} ms`));
      }, timeoutMs);
      const list = this.waiters.get(requestId) ?? [];
      list.push({ resolve, reject, timer, onProgress });
      this.waiters.set(requestId, list);
    });
  }

  async close(): Promise<void> {
    for (const list of this.waiters.values()) for (const w of list) clearTimeout(w.timer);
    this.waiters.clear();
    await this.consumer.disconnect().catch(() => {});
    await this.admin.disconnect().catch(() => {});
  }
}
