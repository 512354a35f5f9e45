import type { RemediationRequest } from '../contract/request.ts';
import type { OutcomeFields } from './outcomes.ts';

/** A request coalesced into a primary that is still pending; it receives the primary's outcome. */
export interface Follower {
  request: RemediationRequest;
  scope: string;
}

/** A primary request waiting in its scope's queue, or running. */
export interface PendingRequest {
  request: RemediationRequest;
  scope: string;
  partition: number;
  coalesceKey: string;
  receivedAt: number;
  followers: Follower[];
  /** Trailing coalescing: do not start before this time, so duplicates can join. */
  notBefore: number;
  /** Earliest time to evaluate again after a deferral. */
  retryAt: number;
  /** When the request was first deferred, and why (the last reason is what EXPIRED reports). */
  deferredSince: number | null;
  deferReason: string | null;
  deferKind: 'dependencies' | 'budget' | 'lock' | 'executor' | 'in-progress' | null;
  /** A previous owner started executing it and never finished: observe before acting. */
  recovering: boolean;
  /**
   * Loaded from Postgres by a new owner. The previous owner may have been about to run it when the
   * partition moved, so it is observed again once the lock is held, just before executing.
   */
  fromRecovery: boolean;
  /** Set, together with reading `followers`, when the primary's final outcome is recorded. */
  finished: OutcomeFields | null;
  attempts: number;
}

export function newPending(
  request: RemediationRequest,
  scope: string,
  partition: number,
  coalesceKey: string,
  receivedAt: number,
  waitMs = 0,
): PendingRequest {
  return {
    request,
    scope,
    partition,
    coalesceKey,
    receivedAt,
    followers: [],
    notBefore: receivedAt + waitMs,
    retryAt: 0,
    deferredSince: null,
    deferReason: null,
    deferKind: null,
    recovering: false,
    fromRecovery: false,
    finished: null,
    attempts: 0,
  };
}
