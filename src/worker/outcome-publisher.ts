import type { KeyObject } from 'node:crypto';
import type { Message, Producer } from 'kafkajs';
import { SIGNATURE_HEADER, signValue } from '../contract/signing.ts';
import type { RemediationOutcome } from '../contract/outcome.ts';
import type { Serde } from '../contract/serde.ts';
import type { AuditStore } from '../audit/index.ts';
import type { Logger } from '../logging/index.ts';
import { isRequestId } from '../decide/index.ts';
import { GroupFlush } from './group-flush.ts';

/** Outcomes per produce request: far below Kafka's default 1 MB request limit (an outcome is < 1 KB). */
const MAX_SEND = 500;
/** Records per produce request when callers' sends are grouped: ~0.5 MB of outcomes. */
const MAX_FLUSH = 1_500;
/**
 * Outcomes kept in memory for retry while Kafka is unreachable. Beyond it the oldest are dropped
 * from memory — not lost: their outbox flag is still unset, and the outbox sweep (or the next
 * owner of the partition) publishes them from PostgreSQL.
 */
const MAX_BACKLOG = 20_000;

/**
 * Publishes outcomes, keyed by scope, deduplicated by requestId on the agent side (at-least-once).
 * Two kinds: answers decided on arrival are delivered before their record's offset is committed
 * (deliver); later answers are published and then flagged in request_state (publish, the outbox),
 * so that if the worker dies in between, the next owner of the partition publishes them again.
 */
export class OutcomePublisher {
  private backlog: RemediationOutcome[] = [];
  /** Outcomes handed to publish() and not yet acknowledged: callers that do not await use it as backpressure. */
  inFlight = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  /** Every caller's records go out together: one produce request per flush, not one per primary. */
  private readonly sends: GroupFlush<Message>;
  /** Every caller's outbox flags set together: one UPDATE per flush. */
  private readonly flags: GroupFlush<string>;

  constructor(
    private readonly producer: Producer,
    private readonly serde: Serde,
    private readonly audit: AuditStore,
    private readonly topic: string,
    private readonly log: Logger,
    /** Arbiter's key: each outcome is signed, so an agent can tell a worker's answer from a forgery. */
    private readonly signingKey: KeyObject | null = null,
  ) {
    this.sends = new GroupFlush((messages) => this.producer.send({ topic: this.topic, acks: -1, messages }).then(() => undefined), MAX_FLUSH);
    this.flags = new GroupFlush((ids) => this.audit.markPublished(ids), MAX_FLUSH);
  }

  /**
   * Publishes outcomes decided after arrival (a primary's end and its followers', recovery, the
   * outbox sweep) and then sets their outbox flag — only once every slice is on Kafka, since a
   * primary's flag also covers the followers answered with it. A slice that fails is retried from
   * memory; if that is lost too, the unset flag makes the sweep or the next owner publish again.
   */
  async publish(outcomes: RemediationOutcome[]): Promise<void> {
    const sent = await Promise.all(this.slices(outcomes).map((slice) => this.send(slice).then(() => true, (error: unknown) => this.failed(slice, error))));
    if (!sent.every(Boolean)) return;
    // A request without a UUID id has no working state to flag.
    const published = outcomes.filter((o) => o.final && isRequestId(o.requestId)).map((o) => o.requestId);
    await this.flags.add(published).catch((error: unknown) => this.log.warn({ err: error, count: published.length }, 'marking outcomes published failed'));
  }

  /**
   * Publishes answers decided on arrival and resolves once Kafka has every one. They have no outbox
   * flag: the caller commits the offset only after this, so a record whose answer was lost is
   * redelivered and answered again. Retries until sent; gives up only when `signal` aborts.
   */
  async deliver(outcomes: RemediationOutcome[], signal?: AbortSignal): Promise<void> {
    if (!outcomes.length) return;
    for (let attempt = 1; ; attempt++) {
      try {
        await Promise.all(this.slices(outcomes).map((slice) => this.send(slice)));
        return;
      } catch (error) {
        if (signal?.aborted) throw error;
        if (attempt === 1 || attempt % 10 === 0) this.log.warn({ err: error, count: outcomes.length, attempt }, 'publishing arrival outcomes failed; will retry');
        await new Promise((resolve) => setTimeout(resolve, Math.min(5_000, 100 * 2 ** Math.min(attempt, 6))));
      }
    }
  }

  private slices(outcomes: RemediationOutcome[]): RemediationOutcome[][] {
    const slices: RemediationOutcome[][] = [];
    for (let i = 0; i < outcomes.length; i += MAX_SEND) slices.push(outcomes.slice(i, i + MAX_SEND));
    return slices;
  }

  private async send(outcomes: RemediationOutcome[]): Promise<void> {
    this.inFlight += outcomes.length;
    try {
      const values = await this.serde.encodeOutcomes(outcomes);
      const messages = outcomes.map((o, i): Message => {
        const value = values[i]!;
        const headers: Record<string, string> = { 'arbiter-request-id': o.requestId };
        if (this.signingKey) headers[SIGNATURE_HEADER] = signValue(this.signingKey, value);
        return { key: o.scope, value, headers };
      });
      await this.sends.add(messages);
    } finally {
      this.inFlight -= outcomes.length;
    }
  }

  private failed(outcomes: RemediationOutcome[], error: unknown): false {
    this.log.warn({ err: error, count: outcomes.length }, 'publishing outcomes failed; will retry');
    this.keepForRetry(outcomes);
    return false;
  }

  private keepForRetry(outcomes: RemediationOutcome[]): void {
    this.backlog.push(...outcomes);
    if (this.backlog.length > MAX_BACKLOG) {
      const dropped = this.backlog.splice(0, this.backlog.length - MAX_BACKLOG);
      this.log.warn({ dropped: dropped.length }, 'outcome backlog full: the oldest are left to the outbox sweep');
    }
    this.scheduleRetry();
  }

  get backlogSize(): number {
    return this.backlog.length;
  }

  private scheduleRetry(): void {
    if (this.retryTimer) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      const batch = this.backlog;
      this.backlog = [];
      void this.publish(batch);
    }, 1_000);
    this.retryTimer.unref();
  }

  /** Tries once more to publish what is left; what still fails is republished by the next owner. */
  async flush(): Promise<void> {
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    const batch = this.backlog;
    this.backlog = [];
    if (batch.length) await this.publish(batch);
  }
}
