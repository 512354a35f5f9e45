import type { DeferRule, FinalDecision } from '../contract/decision.ts';
import type { RemediationRequest } from '../contract/request.ts';
import type { QueuedRequest } from '../decide/index.ts';
import type { ReleaseInput } from '../locks/index.ts';
import type { Schedulable } from './scope-queue.ts';
import { FollowerList } from './follower-list.ts';

export type { AnsweredRequest, Follower } from './follower-list.ts';

/**
 * A primary request waiting in its scope's queue, or running. Owned by its Partition; only the
 * partition and the head-of-queue runner of that partition change it.
 */
export interface PendingRequest extends QueuedRequest, Schedulable {
  request: RemediationRequest;
  scope: string;
  coalesceKey: string;
  receivedAt: number;
  /** The duplicates merged into it while it is pending, packed (follower-list.ts). */
  followers: FollowerList;
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
  /**
   * The lease of an execution that ended with a final decision, handed off to be released by the
   * statement that records it (AuditStore.finalize): kept here until that statement succeeds.
   */
  heldLease: ReleaseInput | null;
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
    followers: new FollowerList({ request, scope }),
    notBefore,
    retryAt: 0,
    deferredSince: null,
    deferRule: null,
    deferDetail: null,
    observeFirst: false,
    fromRecovery: false,
    errors: 0,
    unrecorded: null,
    heldLease: null,
    finished: null,
    spilled: null,
  };
}
