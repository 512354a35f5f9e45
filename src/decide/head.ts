import { DISRUPTIVE_ACTIONS, type ActionName } from '../contract/actions.ts';
import type { Decision, DeferRule } from '../contract/decision.ts';
import type { Observation } from '../contract/observation.ts';
import type { RemediationRequest } from '../contract/request.ts';
import { checkBudget, resolveMinAvailable, type BudgetRules, type MinAvailableSpec } from './budget.ts';
import { checkConflict, type ConflictRules, type RecentChange } from './conflict.ts';
import { checkPrecondition, type PreconditionRules } from './preconditions.ts';
import { checkStale } from './stale.ts';

/** A queued request as the head-of-queue rules see it. */
export interface QueuedRequest {
  request: RemediationRequest;
  /** When it was first deferred, and why: a give-up reports the last reason. */
  deferredSince: number | null;
  deferRule: DeferRule | null;
  deferDetail: string | null;
  /** A previous attempt may have run the action (owner died, executor unreachable): look before acting. */
  observeFirst: boolean;
}

export interface DependencyState {
  final: boolean;
  /** For a coalesced dependency, the status of the primary it merged into. */
  effectiveStatus: string;
}

/** Facts gathered by the worker on demand; `undefined` means not fetched yet. */
export interface HeadFacts {
  dependencies?: ReadonlyMap<string, DependencyState>;
  observation?: Observation | { unavailable: string };
  /** Plans Arbiter made for this request, by id: null when not made yet. */
  plans?: ReadonlyMap<string, { status: string; detail: string | null } | null>;
}

export interface HeadRules {
  maxDeferMs: number;
  /** A deadline counts as passed only this long after it (agents' clocks differ from ours). */
  clockSkewToleranceMs: number;
  conflicts: ConflictRules;
  budget: { rules: BudgetRules; defaultMinAvailable: MinAvailableSpec; onBreach: 'defer' | 'reject' };
  preconditions: Omit<PreconditionRules, 'minAvailableOf'>;
}

/**
 * What to do next at the head of the queue: a decision, a fact the rules need first, or go ahead
 * (take the lock and execute) at the observed version.
 */
export type HeadStep =
  | { kind: 'decided'; decision: Decision }
  | { kind: 'need'; fact: 'dependencies' | 'observation' }
  | { kind: 'need'; fact: 'plan'; planId: string }
  | { kind: 'execute'; observation: Observation };

/**
 * Steps 5 and 7-8 of the pipeline for the request at the head of its scope's queue, in order:
 * give up, dependencies, observe, recovery, stale, conflict, precondition (and the plan that makes
 * it hold), budget. They run here rather than on
 * arrival because only now is the resource's version current. Pure: the worker fetches each fact
 * the function asks for and calls it again, so a rule is never evaluated on facts it did not need.
 */
export function decideAtHead(
  queued: QueuedRequest,
  facts: HeadFacts,
  recentChanges: readonly RecentChange[],
  rules: HeadRules,
  now: number,
): HeadStep {
  const { request } = queued;
  const decided = (decision: Decision): HeadStep => ({ kind: 'decided', decision });
  const defer = (rule: DeferRule, detail: string, extra: { observeFirst?: boolean } = {}) =>
    decided({ status: 'DEFERRED', rule, detail, retryAt: null, ...extra });

  const giveUpAt = Math.min(
    request.deadline === null ? Number.POSITIVE_INFINITY : request.deadline + rules.clockSkewToleranceMs,
    // Waiting for a plan Arbiter made is bounded by that plan's deadline, not by maxDeferMs: a node
    // drain through every workload's budget can take longer than any one request should wait.
    queued.deferredSince === null || queued.deferRule === 'plan' ? Number.POSITIVE_INFINITY : queued.deferredSince + rules.maxDeferMs,
  );
  if (now >= giveUpAt) {
    const detail = queued.deferDetail ? `gave up waiting: ${queued.deferDetail}` : 'deadline passed before the request could run';
    if (queued.deferRule === 'budget') return decided({ status: 'REJECTED_BUDGET', rule: 'give-up', detail });
    if (queued.deferRule === 'precondition' || queued.deferRule === 'plan') return decided({ status: 'REJECTED_PRECONDITION', rule: 'give-up', detail });
    return decided({ status: 'EXPIRED', rule: 'give-up', detail });
  }

  if (request.dependsOn.length) {
    if (!facts.dependencies) return { kind: 'need', fact: 'dependencies' };
    for (const id of request.dependsOn) {
      const dep = facts.dependencies.get(id);
      if (!dep || !dep.final) return defer('dependencies', `waiting for request ${id} to complete`);
      if (dep.effectiveStatus !== 'EXECUTED') {
        return decided({ status: 'FAILED', rule: 'dependencies', detail: `dependency ${id} ended ${dep.effectiveStatus}` });
      }
    }
  }

  if (!facts.observation) return { kind: 'need', fact: 'observation' };
  if ('unavailable' in facts.observation) {
    return defer('executor', `cannot observe the resource: ${facts.observation.unavailable}`, { observeFirst: queued.observeFirst });
  }
  const observed = facts.observation;
  if (!observed.exists) return decided({ status: 'REJECTED_INVALID', rule: 'observe', detail: 'the executor does not know this resource' });

  if (queued.observeFirst) {
    // An earlier attempt may have run it (owner died mid-action, executor unreachable): never twice.
    if (observed.appliedRequestIds.includes(request.requestId)) {
      return decided({
        status: 'EXECUTED',
        rule: 'recovery',
        resourceVersion: observed.version,
        fencingToken: null,
        detail: 'executed by an earlier attempt; verified by observation',
      });
    }
    if (observed.inProgressRequestIds.includes(request.requestId)) {
      return defer('recovery', 'an earlier attempt started this action; waiting for it to finish', { observeFirst: true });
    }
  }

  const stale = checkStale(request, observed.version);
  if (stale) return decided({ status: 'REJECTED_STALE', rule: 'stale', detail: stale, resourceVersion: observed.version });

  const conflict = checkConflict(request, recentChanges, rules.conflicts, now);
  if (conflict) return decided({ status: 'REJECTED_CONFLICT', rule: 'conflict', detail: conflict, resourceVersion: observed.version });

  // After stale and conflict: a request based on an outdated version is told to re-observe first.
  const precondition = checkPrecondition(request, observed, { ...rules.preconditions, minAvailableOf: (o) => minAvailableOf(o, rules.budget) }, now);
  if (precondition.kind === 'reject') {
    return decided({ status: 'REJECTED_PRECONDITION', rule: 'precondition', detail: precondition.detail, resourceVersion: observed.version });
  }
  if (precondition.kind === 'wait') return defer('precondition', precondition.detail);
  if (precondition.kind === 'expand') {
    const { planId } = precondition.plan;
    if (!facts.plans?.has(planId)) return { kind: 'need', fact: 'plan', planId };
    const plan = facts.plans.get(planId);
    if (!plan) return decided({ status: 'DEFERRED', rule: 'plan', detail: `${precondition.detail} (plan ${planId})`, retryAt: null, expand: precondition.plan });
    if (plan.status === 'RUNNING') return defer('plan', `waiting for plan ${planId}: ${precondition.detail}`);
    if (plan.status === 'SUCCEEDED') return defer('precondition', `plan ${planId} succeeded, yet ${precondition.detail}`);
    return decided({ status: 'FAILED', rule: 'plan', detail: `plan ${planId} ended ${plan.status}${plan.detail ? `: ${plan.detail}` : ''}` });
  }

  if (DISRUPTIVE_ACTIONS.has(request.action as ActionName) && observed.workload) {
    const breach = budgetBreach(observed, rules.budget);
    if (breach) {
      if (rules.budget.onBreach === 'reject') {
        return decided({ status: 'REJECTED_BUDGET', rule: 'budget', detail: breach, resourceVersion: observed.version });
      }
      return defer('budget', breach);
    }
  }

  return { kind: 'execute', observation: observed };
}

/** A workload's minimum: a budget rule for it, else what the executor reports, else the default. */
function minAvailableOf(observed: Observation, budget: HeadRules['budget']): number | null {
  const workload = observed.workload;
  if (!workload) return null;
  const spec = budget.rules.minAvailableFor(workload.arn);
  return spec !== null
    ? resolveMinAvailable(spec, workload.desired)
    : Math.max(workload.minAvailable, 0) || resolveMinAvailable(budget.defaultMinAvailable, workload.desired);
}

function budgetBreach(observed: Observation, budget: HeadRules['budget']): string | null {
  const workload = observed.workload!;
  const minAvailable = minAvailableOf(observed, budget)!;
  // A replica that is already down does not cost the budget anything more.
  const alreadyDown = observed.kind === 'pod' && observed.state.ready === false;
  return checkBudget({ desired: workload.desired, available: workload.available, minAvailable }, alreadyDown ? 0 : 1);
}
