import type { DeferRule, FinalDecision } from '../contract/decision.ts';
import type { RemediationRequest } from '../contract/request.ts';
import type { QueuedRequest } from '../decide/index.ts';
import type { Schedulable } from './scope-queue.ts';

/** A request coalesced into a primary that is still pending; it receives the primary's outcome. */
/** What answering a request needs of it (toOutcome): a follower keeps only this, not its request. */
export type AnsweredRequest = Pick<RemediationRequest, 'requestId' | 'agentId' | 'resourceArn' | 'action' | 'requestedAt'>;

export interface Follower {
  request: AnsweredRequest;
  scope: string;
}

/**
 * A follower as kept in memory until its primary ends: a storm's duplicates wait in flight by the
 * hundred thousand, and their whole requests (params, reasons, …) made most of a worker's memory.
 * Its ARN, action and scope are its primary's (that is what coalescing matched), so it shares the
 * primary's strings instead of keeping its own decoded copies.
 */
export function follower(request: AnsweredRequest, scope: string, primary: PendingRequest): Follower {
  const { requestId, agentId, requestedAt } = request;
  const same = <T>(own: T, primarys: T) => (own === primarys ? primarys : own);
  return {
    request: { requestId, agentId, requestedAt, resourceArn: same(request.resourceArn, primary.request.resourceArn), action: same(request.action, primary.request.action) },
    scope: same(scope, primary.scope),
  };
}

/**
 * A primary request waiting in its scope's queue, or running. Owned by its Partition; only the
 * partition and the head-of-queue runner of that partition change it.
 */
export interface PendingRequest extends QueuedRequest, Schedulable {
  request: RemediationRequest;
  scope: string;
  coalesceKey: string;
  receivedAt: number;
  followers: Follower[];
  deferredSince: number | null;
  deferRule: DeferRule | null;
  deferDetail: string | null;
  /** An earlier attempt may have run the action (owner died, executor unreachable): observe first. */
  observeFirst: boolean;
  /**
   * Loaded from Postgres by a new owner. The previous owner may have been about to run it when the
   * partition moved, so it is observed again once the lock is held, just before executing.
   */
  fromRecovery: boolean;
  /** Unexpected errors so far (bounded by retries.maxAttempts). */
  errors: number;
  /**
   * A final decision that could not be recorded (the database failed after the executor answered):
   * recorded on the next attempt as it is, never decided again — deciding again could run the
   * action a second time.
   */
  unrecorded: FinalDecision | null;
  /** Set, together with reading `followers`, when the primary's final decision is durable. */
  finished: FinalDecision | null;
  /**
   * Its followers wait in PostgreSQL only (the partition held too many in memory). Once it has
   * settled: the last offset the partition had accepted then — the followers to read back are the
   * in-flight duplicates of this primary up to it (later ones were answered on arrival).
   */
  spilled: { through: string | null } | null;
}

export function newPending(request: RemediationRequest, scope: string, coalesceKey: string, receivedAt: number, notBefore = receivedAt): PendingRequest {
  return {
    request,
    scope,
    coalesceKey,
    receivedAt,
    followers: [],
    notBefore,
    retryAt: 0,
    deferredSince: null,
    deferRule: null,
    deferDetail: null,
    observeFirst: false,
    fromRecovery: false,
    errors: 0,
    unrecorded: null,
    finished: null,
    spilled: null,
  };
}
