import type { ActionName } from '../contract/actions.ts';
import { followerDecision, inFlightFollower, type Decision } from '../contract/decision.ts';
import type { RemediationRequest } from '../contract/request.ts';
import { coalesceKey, type CoalesceMatch } from '../coalesce/index.ts';
import { partitionForKey, tryParseArn, type Policy, type ScopeResolver } from '../routing/index.ts';
import type { Authentication } from './authenticate.ts';
import { validateRequest, type RequestLimits } from './validate.ts';

/** What the arrival rules need to know about the partition the record was read from. */
export interface ArrivalView {
  partition: number;
  /** Partitions of the requests topic: a scope's owner is murmur2(scope) mod this. */
  partitions: number;
  /** The primary a duplicate would merge into; `in-flight` only while that primary is pending here. */
  coalesceMatch(key: string): CoalesceMatch | undefined;
}

/** The configuration the arrival rules read (compiled matchers, limits, per-action windows). */
export interface ArrivalRules {
  scopes: ScopeResolver;
  policy: Policy;
  limits: RequestLimits;
  actions: Readonly<Record<ActionName, { coalesceWindowMs: number; waitForDuplicates: boolean }>>;
  /** A deadline counts as passed only this long after it (agents' clocks differ from ours). */
  clockSkewToleranceMs: number;
}

export interface Arrival {
  scope: string;
  coalesceKey: string;
  decision: Decision;
}

/**
 * Steps 2-4 and 6 of the pipeline, decided on arrival in partition order: parse the ARN, re-route
 * a record keyed off its scope's partition, validate, authorize, expire, coalesce, else accept
 * into the scope's queue. Pure: the caller makes the decision durable, then applies it.
 * (Step 1, decoding, and step 3, redelivery, happen before: they need the registry and Postgres.)
 */
export function decideArrival(
  request: RemediationRequest,
  recordKey: string | null,
  view: ArrivalView,
  rules: ArrivalRules,
  now: number,
  /** Who sent the record (authenticate.ts), checked by the worker on the record's bytes. */
  authentication: Authentication = { ok: true, signedBy: null },
): Arrival {
  const parsed = tryParseArn(request.resourceArn);
  if (!parsed.ok) {
    // Without a valid ARN there is no scope: the record's key stands in for it in the audit trail.
    const scope = recordKey ?? request.resourceArn;
    return { scope, coalesceKey: '', decision: { status: 'REJECTED_INVALID', rule: 'arn', detail: `invalid resourceArn: ${parsed.reason}` } };
  }
  const scope = rules.scopes.scopeOf(parsed.arn);

  // Before anything else about the request: a forged or replayed record is refused wherever it landed.
  // (Only a valid request has a coalesce key, as it holds the params: a rejected one is never merged.)
  if (!authentication.ok) return arrival(scope, '', { status: 'REJECTED_UNAUTHORIZED', rule: 'authenticate', detail: authentication.reason });

  const owner = partitionForKey(scope, view.partitions);
  if (owner !== view.partition) {
    // Keyed by something other than its scope (another client's partitioner, or older scope rules):
    // moved to its scope's partition so one owner decides everything about that scope.
    return arrival(scope, '', {
      status: 'REROUTED',
      rule: 'route',
      toPartition: owner,
      detail: `keyed onto partition ${view.partition}; moved to partition ${owner} of its scope`,
    });
  }

  const problems = validateRequest(request, rules.limits);
  if (problems.length) return arrival(scope, '', { status: 'REJECTED_INVALID', rule: 'validate', detail: problems.join('; ') });
  const key = coalesceKey(request.resourceArn, request.action, request.params);

  const auth = rules.policy.authorize(request.agentId, request.action, parsed.arn);
  if (!auth.allowed) return arrival(scope, key, { status: 'REJECTED_UNAUTHORIZED', rule: 'authorize', detail: auth.reason });

  if (request.deadline !== null && request.deadline + rules.clockSkewToleranceMs <= now) {
    return arrival(scope, key, { status: 'EXPIRED', rule: 'deadline', detail: 'deadline passed before the request was decided' });
  }

  const match = view.coalesceMatch(key);
  if (match) return arrival(scope, key, coalescedInto(match));

  const settings = rules.actions[request.action as ActionName];
  return arrival(scope, key, {
    status: 'ACCEPTED',
    rule: 'accept',
    // Trailing coalescing: hold the primary for its window so duplicates can join before it runs.
    notBefore: settings.waitForDuplicates ? now + settings.coalesceWindowMs : now,
    detail: 'accepted into its scope queue',
  });
}

function arrival(scope: string, coalesceKey: string, decision: Decision): Arrival {
  return { scope, coalesceKey, decision };
}

/**
 * The decision of a duplicate merged into `match`'s primary: one object per match, shared by every
 * duplicate of that primary (a storm's duplicates are ~99 % of its requests, and each one built its
 * own decision and detail text). Frozen, since it is shared.
 */
const coalescedDecisions = new WeakMap<CoalesceMatch, Decision>();

function coalescedInto(match: CoalesceMatch): Decision {
  let decision = coalescedDecisions.get(match);
  if (!decision) {
    decision = Object.freeze(match.kind === 'finished' ? followerDecision(match.primaryRequestId, match.outcome) : inFlightFollower(match.primaryRequestId));
    coalescedDecisions.set(match, decision);
  }
  return decision;
}
