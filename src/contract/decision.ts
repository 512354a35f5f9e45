import type { OutcomeStatus, RemediationOutcome } from './outcome.ts';
import type { ExpansionPlan } from './plan.ts';
import type { RemediationRequest } from './request.ts';

/**
 * Every status a decision can have. The outcome event carries the OutcomeStatus subset; the audit
 * trail also records progress that agents never see as an outcome (accepted into a scope queue,
 * re-routed to the scope's partition). Audit rows, outcome events and metrics share this union.
 */
export type DecisionStatus = OutcomeStatus | 'ACCEPTED' | 'REROUTED';

/** The rule of the decision pipeline that produced a decision; recorded with it in the audit trail. */
export type DecisionRule =
  // on arrival, in this order
  | 'arn'
  | 'authenticate'
  | 'route'
  | 'validate'
  | 'authorize'
  | 'idempotency'
  | 'deadline'
  | 'coalesce'
  | 'accept'
  // at the head of the scope queue, in this order
  | 'give-up'
  | 'dependencies'
  | 'observe'
  | 'recovery'
  | 'precondition'
  | 'plan'
  | 'stale'
  | 'conflict'
  | 'budget'
  | 'lock'
  | 'executor'
  | 'execute'
  | 'verify'
  | 'error';

/** Why a request waits in its queue; the last reason is what a give-up reports. */
export type DeferRule = 'dependencies' | 'precondition' | 'plan' | 'budget' | 'lock' | 'executor' | 'recovery' | 'error';

interface Common {
  detail: string;
  primaryRequestId?: string | null;
  resourceVersion?: number | null;
  fencingToken?: number | null;
}

/**
 * One decision about one request, as a value: the pure core returns it, the worker applies it
 * exactly once (durable write, then memory, then publish).
 */
export type Decision =
  | (Common & { status: 'REROUTED'; rule: 'route'; toPartition: number })
  | (Common & { status: 'ACCEPTED'; rule: 'accept'; notBefore: number })
  /** `inFlight`: merged into a primary still pending, which tells this follower when it ends. */
  | (Common & { status: 'COALESCED'; rule: 'coalesce'; primaryRequestId: string; inFlight?: boolean })
  /** `expand`: the plan that makes an unmet precondition hold; the worker creates it (idempotently) before waiting. */
  | (Common & { status: 'DEFERRED'; rule: DeferRule; retryAt: number | null; observeFirst?: boolean; expand?: ExpansionPlan })
  | (Common & { status: 'EXECUTED'; rule: 'execute' | 'recovery'; resourceVersion: number })
  | (Common & { status: 'FAILED'; rule: 'dependencies' | 'plan' | 'execute' | 'verify' | 'error' })
  | (Common & { status: 'EXPIRED'; rule: 'deadline' | 'give-up' })
  | (Common & { status: 'REJECTED_INVALID'; rule: 'arn' | 'validate' | 'observe' })
  | (Common & { status: 'REJECTED_UNAUTHORIZED'; rule: 'authenticate' | 'authorize' })
  /** The request id was decided already for a different request: the id is an agent's bug. */
  | (Common & { status: 'REJECTED_DUPLICATE_ID'; rule: 'idempotency' })
  | (Common & { status: 'REJECTED_STALE'; rule: 'stale' })
  | (Common & { status: 'REJECTED_CONFLICT'; rule: 'conflict' })
  | (Common & { status: 'REJECTED_BUDGET'; rule: 'budget' | 'give-up' })
  | (Common & { status: 'REJECTED_PRECONDITION'; rule: 'precondition' | 'give-up' });

export type FinalDecision = Exclude<Decision, { status: 'REROUTED' | 'ACCEPTED' | 'DEFERRED' }>;

export function isFinal(decision: Decision): decision is FinalDecision {
  return decision.status !== 'REROUTED' && decision.status !== 'ACCEPTED' && decision.status !== 'DEFERRED';
}

/** What a coalesced request is told once its primary has ended: it shares the primary's result. */
export function followerDecision(primaryRequestId: string, primary: FinalDecision): FinalDecision {
  return {
    status: 'COALESCED',
    rule: 'coalesce',
    primaryRequestId,
    resourceVersion: primary.resourceVersion ?? null,
    fencingToken: primary.fencingToken ?? null,
    detail: `coalesced into ${primaryRequestId}, which ended ${primary.status}${primary.detail ? `: ${primary.detail}` : ''}`,
  };
}

/** A COALESCED decision made while the primary is still in flight. */
export function inFlightFollower(primaryRequestId: string): FinalDecision {
  return { status: 'COALESCED', rule: 'coalesce', primaryRequestId, inFlight: true, detail: `coalesced into ${primaryRequestId}, in flight` };
}

/** The outcome event for a decision agents may see (every final one, and DEFERRED as progress). */
export function toOutcome(
  request: Pick<RemediationRequest, 'requestId' | 'agentId' | 'resourceArn' | 'action' | 'requestedAt'>,
  scope: string,
  decision: FinalDecision | Extract<Decision, { status: 'DEFERRED' }>,
  workerId: string,
  now: number,
): RemediationOutcome {
  const final = isFinal(decision);
  return {
    requestId: request.requestId,
    agentId: request.agentId,
    resourceArn: request.resourceArn,
    action: request.action,
    scope,
    status: decision.status,
    final,
    primaryRequestId: decision.primaryRequestId ?? null,
    resourceVersion: decision.resourceVersion ?? null,
    fencingToken: decision.fencingToken ?? null,
    detail: decision.detail,
    requestedAt: request.requestedAt,
    decidedAt: now,
    completedAt: final ? now : null,
    workerId,
  };
}
