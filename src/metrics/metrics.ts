import client from 'prom-client';
import { isAction } from '../contract/actions.ts';
import type { DecisionStatus } from '../contract/decision.ts';

/** Distinct values a free-form label (agent id, resource type) may take before the rest count as `other`. */
const MAX_LABEL_VALUES = 100;

/**
 * Keeps a label's cardinality bounded: the first MAX_LABEL_VALUES distinct values are kept, every
 * later one is `other`. Labels from a closed set (actions) map anything unknown to `other`.
 */
function boundedLabel(): (value: string) => string {
  const seen = new Set<string>();
  return (value) => {
    if (seen.has(value)) return value;
    if (seen.size >= MAX_LABEL_VALUES || value.length > 128) return 'other';
    seen.add(value);
    return value;
  };
}
const actionLabel = (action: string) => (isAction(action) ? action : 'other');

/**
 * Every metric Arbiter exports, in one place, on a registry of our own (so tests and several
 * workers in one process never collide on the global registry). Names are part of the interface:
 * they are documented in the README and tested.
 */
export function createMetrics() {
  const registry = new client.Registry();
  client.collectDefaultMetrics({ register: registry, prefix: 'arbiter_process_' });
  const latencyBuckets = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
  const metrics = {
    registry,
    decisions: new client.Counter({
      name: 'arbiter_decisions_total',
      help: 'Decisions by status (final and progress)',
      labelNames: ['status', 'action'] as const,
      registers: [registry],
    }),
    coalesced: new client.Counter({
      name: 'arbiter_coalesced_total',
      help: 'Requests merged into an identical primary',
      labelNames: ['action'] as const,
      registers: [registry],
    }),
    deferrals: new client.Counter({
      name: 'arbiter_deferrals_total',
      help: 'Requests deferred, by reason',
      labelNames: ['reason'] as const,
      registers: [registry],
    }),
    deadLetters: new client.Counter({
      name: 'arbiter_dead_letters_total',
      help: 'Records sent to the dead-letter topic, by error code',
      labelNames: ['code'] as const,
      registers: [registry],
    }),
    rerouted: new client.Counter({
      name: 'arbiter_rerouted_total',
      help: 'Records keyed onto the wrong partition and moved to their scope partition',
      registers: [registry],
    }),
    lockAcquireFailures: new client.Counter({
      name: 'arbiter_lock_acquire_failures_total',
      help: 'Lock acquisitions refused because another owner held the lock',
      labelNames: ['resource_type', 'agent'] as const,
      registers: [registry],
    }),
    lockExpirations: new client.Counter({
      name: 'arbiter_lock_ttl_expirations_total',
      help: 'Locks that expired unreleased (recorded by the reaper)',
      registers: [registry],
    }),
    fencedWrites: new client.Counter({
      name: 'arbiter_fenced_writes_total',
      help: 'Executions refused by the executor because the fencing token was stale',
      registers: [registry],
    }),
    inconsistencies: new client.Counter({
      name: 'arbiter_inconsistencies_total',
      help: 'Inconsistent state detected, by kind',
      labelNames: ['kind'] as const,
      registers: [registry],
    }),
    decisionLatency: new client.Histogram({
      name: 'arbiter_decision_latency_seconds',
      help: 'From the record being appended to Kafka to its first durable decision',
      buckets: latencyBuckets,
      registers: [registry],
    }),
    executionLatency: new client.Histogram({
      name: 'arbiter_execution_latency_seconds',
      help: 'Executor call plus verification, by action',
      labelNames: ['action'] as const,
      buckets: latencyBuckets,
      registers: [registry],
    }),
    consumerLag: new client.Gauge({
      name: 'arbiter_consumer_lag',
      help: 'High watermark minus the next offset to process, by partition',
      labelNames: ['partition'] as const,
      registers: [registry],
    }),
    pending: new client.Gauge({
      name: 'arbiter_pending_requests',
      help: 'Requests accepted and not yet final, held by this worker',
      registers: [registry],
    }),
    executionsRunning: new client.Gauge({
      name: 'arbiter_executions_running',
      help: 'Executions in progress on this worker',
      registers: [registry],
    }),
    planEvents: new client.Counter({
      name: 'arbiter_plan_events_total',
      help: 'Plan state changes recorded by this relay, by event type (SUBMITTED, STEP_RELEASED, FAILED, ...)',
      labelNames: ['type'] as const,
      registers: [registry],
    }),
    planOutboxRelayed: new client.Counter({
      name: 'arbiter_plan_outbox_relayed_total',
      help: 'Outbox rows (step requests and plan events) this relay published',
      labelNames: ['kind'] as const,
      registers: [registry],
    }),
  };
  const agentLabel = boundedLabel();
  const typeLabel = boundedLabel();
  return {
    ...metrics,
    /** Counts a decision; the status is the one union shared with the audit rows and the outcome event. */
    countDecision(status: DecisionStatus, action: string): void {
      metrics.decisions.inc({ status, action: actionLabel(action) });
    },
    countCoalesced(action: string): void {
      metrics.coalesced.inc({ action: actionLabel(action) });
    },
    observeExecution(action: string, seconds: number): void {
      metrics.executionLatency.observe({ action: actionLabel(action) }, seconds);
    },
    /** Contention by resource type and agent, both bounded (agents and types are open sets). */
    countLockAcquireFailure(resourceType: string, agent: string): void {
      metrics.lockAcquireFailures.inc({ resource_type: typeLabel(resourceType), agent: agentLabel(agent) });
    },
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
