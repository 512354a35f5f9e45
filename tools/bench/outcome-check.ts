import type { Admin, Kafka } from 'kafkajs';
import type { Serde } from '../../src/index.ts';
import { topicRecords } from './kafka.ts';
import { progressBar } from './progress.ts';
import { sleep } from './stats.ts';

/** What the outcomes topic says: each request should have exactly one final status (republished copies agree). */
export interface OutcomeTopicCheck {
  records: number;
  /** Progress outcomes (DEFERRED): fine, as long as a final one follows. */
  progressRecords: number;
  finalRecords: number;
  /** Distinct request ids with a final outcome. */
  requestsWithFinal: number;
  /** Final records beyond the first for a request, same status (at-least-once republishing: allowed). */
  republished: number;
  /** Requests with two different final statuses: never allowed. */
  conflicting: number;
  conflictExamples: string[];
}

/** Tallies outcome records by request id; pure, so the rule "one final per request" is unit-tested. */
export class OutcomeTally {
  private readonly finalStatus = new Map<string, string>();
  private records = 0;
  private progressRecords = 0;
  private finalRecords = 0;
  private republished = 0;
  private readonly conflicts = new Set<string>();

  add(requestId: string, status: string, final: boolean): void {
    this.records++;
    if (!final) {
      this.progressRecords++;
      return;
    }
    this.finalRecords++;
    const seen = this.finalStatus.get(requestId);
    if (seen === undefined) this.finalStatus.set(requestId, status);
    else if (seen === status) this.republished++;
    else this.conflicts.add(`${requestId}: ${seen} then ${status}`);
  }

  result(): OutcomeTopicCheck {
    return {
      records: this.records,
      progressRecords: this.progressRecords,
      finalRecords: this.finalRecords,
      requestsWithFinal: this.finalStatus.size,
      republished: this.republished,
      conflicting: this.conflicts.size,
      conflictExamples: [...this.conflicts].slice(0, 5),
    };
  }
}

/**
 * Reads the whole outcomes topic from the beginning (after the storm, while nothing else writes
 * to it) and decodes every record: the agents' view of "every request got one final outcome",
 * independent of how Postgres stores coalesced duplicates.
 */
export async function checkOutcomeTopic(options: { kafka: Kafka; admin: Admin; serde: Serde; topic: string; groupId: string; timeoutMs: number }): Promise<OutcomeTopicCheck> {
  const expected = await topicRecords(options.admin, options.topic);
  const tally = new OutcomeTally();
  let seen = 0;
  let failure: unknown;
  const consumer = options.kafka.consumer({ groupId: options.groupId, maxBytes: 50 * 1024 * 1024, maxBytesPerPartition: 10 * 1024 * 1024 });
  const bar = progressBar('read outcomes', expected);
  await consumer.connect();
  try {
    await consumer.subscribe({ topic: options.topic, fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachBatch: async ({ batch }) => {
        for (const m of batch.messages) {
          try {
            const outcome = await options.serde.decodeOutcome(m.value);
            tally.add(outcome.requestId, outcome.status, outcome.final);
          } catch (error) {
            failure ??= error;
          }
          seen++;
        }
        bar.update(seen);
      },
    });
    const until = Date.now() + options.timeoutMs;
    while (seen < expected && failure === undefined) {
      if (Date.now() > until) throw new Error(`read ${seen} of ${expected} outcome records within ${options.timeoutMs / 1000} s`);
      await sleep(200);
    }
  } finally {
    bar.stop();
    await consumer.disconnect();
    await options.admin.deleteGroups([options.groupId]).catch(() => {});
  }
  if (failure !== undefined) throw new Error(`an outcome record does not decode: ${(failure as Error).message}`);
  return tally.result();
}
