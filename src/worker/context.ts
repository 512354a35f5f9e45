import type { ArbiterConfig } from '../config/index.ts';
import type { AuditStore } from '../audit/index.ts';
import type { LockStore } from '../locks/index.ts';
import type { Executor } from '../executor/index.ts';
import type { Metrics } from '../metrics/index.ts';
import type { Logger } from '../logging/index.ts';
import type { PlanStore } from '../plans/index.ts';
import type { OutcomePublisher } from './outcome-publisher.ts';

/** What the per-scope pipeline needs, and nothing more: no Kafka consumer, no partition bookkeeping. */
export interface PipelineContext {
  config: Readonly<ArbiterConfig>;
  workerId: string;
  audit: AuditStore;
  plans: PlanStore;
  locks: LockStore;
  executor: Executor;
  publisher: OutcomePublisher;
  metrics: Metrics;
  log: Logger;
  /** Aborted when shutdown stops waiting for executions: reaches the executor call and observe. */
  shutdown: AbortSignal;
}
