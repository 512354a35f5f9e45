import type { Producer } from 'kafkajs';
import type { RemediationOutcome } from '../contract/outcome.ts';
import type { Serde } from '../contract/serde.ts';
import type { AuditStore } from '../audit/index.ts';
import type { Logger } from '../logging/index.ts';
import { isRequestId } from '../decide/index.ts';

/**
 * Publishes outcomes, then marks them published in request_state (the outbox flag). If the worker
 * dies in between, the next owner of the partition publishes them again: at-least-once, keyed by
 * scope, deduplicated by requestId on the agent side.
 */
export class OutcomePublisher {
  private backlog: RemediationOutcome[] = [];
  /** Outcomes handed to publish() and not yet acknowledged: callers that do not await use it as backpressure. */
  inFlight = 0;
  private retryTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly producer: Producer,
    private readonly serde: Serde,
    private readonly audit: AuditStore,
    private readonly topic: string,
    private readonly log: Logger,
  ) {}

  async publish(outcomes: RemediationOutcome[]): Promise<void> {
    if (!outcomes.length) return;
    this.inFlight += outcomes.length;
    try {
      const messages = await Promise.all(
        outcomes.map(async (o) => ({ key: o.scope, value: await this.serde.encodeOutcome(o), headers: { 'arbiter-request-id': o.requestId } })),
      );
      await this.producer.send({ topic: this.topic, acks: -1, messages });
    } catch (error) {
      this.log.warn({ err: error, count: outcomes.length }, 'publishing outcomes failed; will retry');
      this.backlog.push(...outcomes);
      this.scheduleRetry();
      return;
    } finally {
      this.inFlight -= outcomes.length;
    }
    // Sent: only the outbox flag is left. If it cannot be set now, a new owner republishes them
    // (agents deduplicate by requestId), which is better than sending them all again here.
    // A request without a UUID id has no working state to flag.
    const published = outcomes.filter((o) => o.final && isRequestId(o.requestId)).map((o) => o.requestId);
    await this.audit.markPublished(published).catch((error: unknown) => this.log.warn({ err: error, count: published.length }, 'marking outcomes published failed'));
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
