import client from 'prom-client';
import { ACTIONS } from '../contract/actions.ts';
import type { DecisionStatus, DeferRule } from '../contract/decision.ts';
import { ERROR_CODES } from '../contract/errors.ts';
import { OUTCOME_STATUSES } from '../contract/outcome.ts';
import { PLAN_EVENT_TYPES } from '../contract/plan.ts';
import { firstSeen, integerBelow, oneOf, withBoundedLabels, type LabelBounds } from './labels.ts';

/** Every status a decision can have (the DecisionStatus union, at run time). */
export const DECISION_STATUSES = [...OUTCOME_STATUSES, 'ACCEPTED', 'REROUTED'] as const satisfies readonly DecisionStatus[];
/** Why a request waits (the DeferRule union, at run time). */
export const DEFER_RULES = ['dependencies', 'precondition', 'plan', 'budget', 'lock', 'executor', 'recovery', 'error'] as const satisfies readonly DeferRule[];
/**
 * Kinds of inconsistent state (issue 10): found lazily at the head of a queue (`unexpected_version`)
 * or by the detector. A kind not listed here is exported as `other`: add it here when adding one.
 */
export const INCONSISTENCY_KINDS = ['drift', 'lost_change', 'conflicting_commits', 'stale_observation', 'unexpected_version'] as const;
/** Outbox rows the plan relay publishes. */
export const OUTBOX_KINDS = ['request', 'event'] as const;
/** Partitions of arbiter.requests: config kafka.requestPartitions is at most 10 000. */
const MAX_PARTITIONS = 10_000;

// Compile-time checks that the run-time lists cover their unions.
type Covers<Union, List extends readonly unknown[]> = [Exclude<Union, List[number]>] extends [never] ? true : never;
const coversStatuses: Covers<DecisionStatus, typeof DECISION_STATUSES> = true;
const coversDeferRules: Covers<DeferRule, typeof DEFER_RULES> = true;
void [coversStatuses, coversDeferRules];

/** What a worker holds in memory right now, read when /metrics is scraped. */
export interface HeldRequests {
  /** Accepted and not yet final. */
  pending: number;
  /** Duplicates in memory waiting for their in-flight primary. */
  waitingFollowers: number;
}

/**
 * Every metric Arbiter exports, in one place, on a registry of our own (so tests and several
 * workers in one process never collide on the global registry). Names are part of the interface:
 * docs/METRICS.md is their reference, and the alert rules and dashboard use them.
 *
 * Every label is bounded (labels.ts): closed sets map unknown values to `other`, open sets
 * (agents, resource types) keep their first 100 values. `labelBounds` lists each metric's bounds;
 * the unit tests check that none is missing.
 */
export function createMetrics(readHeld?: () => Promise<HeldRequests>) {
  const registry = new client.Registry();
  // Both held gauges are collected at once by one scrape; they share one read of the partitions.
  let reading: Promise<HeldRequests> | null = null;
  const held = readHeld && (() => (reading ??= readHeld().finally(() => (reading = null))));
  client.collectDefaultMetrics({ register: registry, prefix: 'arbiter_process_' });
  const latencyBuckets = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
  const labelBounds = new Map<string, LabelBounds<string>>();
  /** Registers the bounds of a metric's labels and makes the metric apply them. */
  function bounded<M extends object, T extends string>(metric: M, labelNames: readonly T[], bounds: LabelBounds<T>): M {
    labelBounds.set((metric as unknown as { name: string }).name, bounds);
    return withBoundedLabels(metric, labelNames, bounds);
  }
  const action = () => oneOf(ACTIONS);
  const metrics = {
    registry,
    decisions: bounded(
      new client.Counter({
        name: 'arbiter_decisions_total',
        help: 'Decisions by status (final and progress)',
        labelNames: ['status', 'action'] as const,
        registers: [registry],
      }),
      ['status', 'action'],
      { status: oneOf(DECISION_STATUSES), action: action() },
    ),
    coalesced: bounded(
      new client.Counter({
        name: 'arbiter_coalesced_total',
        help: 'Requests merged into an identical primary',
        labelNames: ['action'] as const,
        registers: [registry],
      }),
      ['action'],
      { action: action() },
    ),
    deferrals: bounded(
      new client.Counter({
        name: 'arbiter_deferrals_total',
        help: 'Requests deferred, by reason',
        labelNames: ['reason'] as const,
        registers: [registry],
      }),
      ['reason'],
      { reason: oneOf(DEFER_RULES) },
    ),
    deadLetters: bounded(
      new client.Counter({
        name: 'arbiter_dead_letters_total',
        help: 'Records sent to the dead-letter topic, by error code',
        labelNames: ['code'] as const,
        registers: [registry],
      }),
      ['code'],
      { code: oneOf(Object.keys(ERROR_CODES)) },
    ),
    rerouted: new client.Counter({
      name: 'arbiter_rerouted_total',
      help: 'Records keyed onto the wrong partition and moved to their scope partition',
      registers: [registry],
    }),
    /** From the lock log (lock-log.ts), exported by one worker at a time: every path that takes locks is counted. */
    lockAcquireFailures: bounded(
      new client.Counter({
        name: 'arbiter_lock_acquire_failures_total',
        help: 'acquire_failed rows in the lock log (workers, SDK and `arbiter lock` alike): refused because another owner held the lock, by resource type and waiting agent; exported by one worker at a time',
        labelNames: ['resource_type', 'agent'] as const,
        registers: [registry],
      }),
      ['resource_type', 'agent'],
      { resource_type: firstSeen(), agent: firstSeen() },
    ),
    /** From the lock log (lock-log.ts), exported by one worker at a time. */
    lockExpirations: bounded(
      new client.Counter({
        name: 'arbiter_lock_ttl_expirations_total',
        help: 'expired rows in the lock log: locks that expired unreleased, by resource type and the agent that held them; exported by one worker at a time',
        labelNames: ['resource_type', 'agent'] as const,
        registers: [registry],
      }),
      ['resource_type', 'agent'],
      { resource_type: firstSeen(), agent: firstSeen() },
    ),
    lockLogExporter: new client.Gauge({
      name: 'arbiter_lock_log_exporter',
      help: '1 on the one worker that exports the lock-log counters (it holds their advisory lock), 0 on the others',
      registers: [registry],
    }),
    fencedWrites: new client.Counter({
      name: 'arbiter_fenced_writes_total',
      help: 'Executions refused by the executor because the fencing token was stale',
      registers: [registry],
    }),
    inconsistencies: bounded(
      new client.Counter({
        name: 'arbiter_inconsistencies_total',
        help: 'Inconsistent state detected, by kind',
        labelNames: ['kind'] as const,
        registers: [registry],
      }),
      ['kind'],
      { kind: oneOf(INCONSISTENCY_KINDS) },
    ),
    decisionLatency: new client.Histogram({
      name: 'arbiter_decision_latency_seconds',
      help: 'From the record being appended to Kafka to its first durable decision',
      buckets: latencyBuckets,
      registers: [registry],
    }),
    fetchDelay: new client.Histogram({
      name: 'arbiter_fetch_delay_seconds',
      help: 'From a request record being appended to Kafka to the worker having fetched it',
      // Finer between 10 and 100 ms, where a first decision's 50 ms target is spent.
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.02, 0.03, 0.04, 0.05, 0.075, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [registry],
    }),
    executionLatency: bounded(
      new client.Histogram({
        name: 'arbiter_execution_latency_seconds',
        help: 'Executor call plus verification, by action',
        labelNames: ['action'] as const,
        buckets: latencyBuckets,
        registers: [registry],
      }),
      ['action'],
      { action: action() },
    ),
    consumerLag: bounded(
      new client.Gauge({
        name: 'arbiter_consumer_lag',
        help: 'Records on arbiter.requests not yet processed (high watermark minus the next offset to process), by partition this worker owns; read from the broker every worker.lagRefreshMs',
        labelNames: ['partition'] as const,
        registers: [registry],
      }),
      ['partition'],
      { partition: integerBelow(MAX_PARTITIONS) },
    ),
    // Counted when scraped (from `held`), so they are current between chunks and cost nothing per chunk.
    pending: new client.Gauge({
      name: 'arbiter_pending_requests',
      help: 'Requests accepted and not yet final, held by this worker',
      registers: [registry],
      ...(held ? { async collect() { this.set((await held()).pending); } } : {}),
    }),
    waitingFollowers: new client.Gauge({
      name: 'arbiter_waiting_followers',
      help: 'Duplicates held in memory waiting for their in-flight primary, on this worker (beyond worker.maxWaitingFollowersPerPartition they wait in PostgreSQL only)',
      registers: [registry],
      ...(held ? { async collect() { this.set((await held()).waitingFollowers); } } : {}),
    }),
    executionsRunning: new client.Gauge({
      name: 'arbiter_executions_running',
      help: 'Executions in progress on this worker',
      registers: [registry],
    }),
    planEvents: bounded(
      new client.Counter({
        name: 'arbiter_plan_events_total',
        help: 'Plan state changes recorded by this relay, by event type (SUBMITTED, STEP_RELEASED, FAILED, ...)',
        labelNames: ['type'] as const,
        registers: [registry],
      }),
      ['type'],
      { type: oneOf(PLAN_EVENT_TYPES) },
    ),
    planOutboxRelayed: bounded(
      new client.Counter({
        name: 'arbiter_plan_outbox_relayed_total',
        help: 'Outbox rows (step requests and plan events) this relay published',
        labelNames: ['kind'] as const,
        registers: [registry],
      }),
      ['kind'],
      { kind: oneOf(OUTBOX_KINDS) },
    ),
  };
  // Series of closed sets that alerts watch start at 0, so the first increment is an increase
  // Prometheus can see (a series born at 1 has no increase).
  for (const kind of INCONSISTENCY_KINDS) metrics.inconsistencies.inc({ kind }, 0);
  for (const code of Object.keys(ERROR_CODES)) metrics.deadLetters.inc({ code }, 0);
  metrics.lockLogExporter.set(0);
  return {
    ...metrics,
    /** The bounds of each labelled metric, by name (for tests and docs). */
    labelBounds: labelBounds as ReadonlyMap<string, LabelBounds<string>>,
    /** Counts a decision; the status is the one union shared with the audit rows and the outcome event. */
    countDecision(status: DecisionStatus, action: string, n = 1): void {
      metrics.decisions.inc({ status, action }, n);
    },
    countCoalesced(action: string, n = 1): void {
      metrics.coalesced.inc({ action }, n);
    },
    observeExecution(action: string, seconds: number): void {
      metrics.executionLatency.observe({ action }, seconds);
    },
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
