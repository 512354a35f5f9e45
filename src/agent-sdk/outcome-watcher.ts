import type { KeyObject } from 'node:crypto';
import type { Kafka, KafkaMessage } from 'kafkajs';
import { SIGNATURE_HEADER, verifyValue } from '../contract/signing.ts';
import { ArbiterError } from '../contract/errors.ts';
import type { RemediationOutcome } from '../contract/outcome.ts';
import type { Serde } from '../contract/serde.ts';
import { TopicTail } from './topic-tail.ts';

interface Waiter {
  resolve: (outcome: RemediationOutcome) => void;
  reject: (error: Error) => void;
  timer: NodeJS.Timeout;
  onProgress?: (outcome: RemediationOutcome) => void;
}

/** Remembered final outcomes, so awaiting one that already arrived returns at once. */
const REMEMBERED = 50_000;

/** Follows the outcomes topic (see TopicTail) and hands each request's final outcome to whoever waits for it. */
export class OutcomeWatcher {
  private readonly tail: TopicTail;
  private readonly waiters = new Map<string, Waiter[]>();
  private readonly finals = new Map<string, RemediationOutcome>();

  /** Outcomes dropped because their signature did not verify with any trusted key. */
  unverified = 0;

  constructor(kafka: Kafka, serde: Serde, topic: string, trustedKeys: readonly KeyObject[] = []) {
    this.tail = new TopicTail(kafka, topic, async (message) => {
      try {
        if (trustedKeys.length && !signedByOneOf(message, trustedKeys)) {
          // A forged or unsigned answer: never handed to anyone waiting.
          this.unverified += 1;
          return;
        }
        this.deliver(await serde.decodeOutcome(message.value));
      } catch {
        // Not ours to judge: a record we cannot decode is ignored by an agent.
      }
    });
  }

  start(): Promise<void> {
    return this.tail.start();
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
    await this.tail.close();
  }
}

function signedByOneOf(message: KafkaMessage, keys: readonly KeyObject[]): boolean {
  const header = message.headers?.[SIGNATURE_HEADER];
  const signature = (Array.isArray(header) ? header[0] : header)?.toString();
  return Boolean(signature && message.value && keys.some((k) => verifyValue(k, message.value!, signature)));
}
