import { ArbiterError } from '../contract/errors.ts';
import type { LockStore, ReleaseInput } from './lock-store.ts';

export interface LeaseOptions {
  resourceArn: string;
  owner: string;
  agentId?: string | null;
  ttlMs: number;
  /** Renewal period; a third of the TTL unless given. */
  renewEveryMs?: number;
  /**
   * When this signal has aborted by the time `fn` ends (the holder gave up on an action that may
   * still be running), the lock is not released: it is left to expire with its TTL, as if the
   * holder had died, so nobody else acts on the resource before the action can have finished.
   */
  holdIfAborted?: AbortSignal;
}

export interface Lease {
  fencingToken: number;
  /** Aborted when a renewal is refused or the local deadline passes: the holder must stop writing. */
  signal: AbortSignal;
  /**
   * Whether the lease is still certainly held, by this process's own clock: before the deadline
   * its last successful renewal earned. Checked synchronously, so a process that was stalled (a
   * long GC, SIGSTOP) learns on waking that its lease ran out before it acts on a late result.
   */
  live(): boolean;
  /**
   * Stops renewing and leaves the release to the caller, who makes it part of a statement of its
   * own (the worker releases the lock in the statement that records the final decision, so nobody
   * takes it before the decision is durable). Until that statement runs the lock is held as if by
   * a holder that stopped renewing: it expires with its TTL if the statement never comes.
   */
  handOff(): ReleaseInput;
}

/**
 * Runs `fn` while holding the lock, renewing it in the background, and releases it afterwards
 * (unless `fn` handed the release off: Lease.handOff).
 * Throws LOCK_HELD (retryable) when someone else holds it. If a renewal is refused the lease's
 * signal aborts with LOCK_LOST: `fn` must stop writing. Once `fn` has returned, its result stands
 * and is returned as is — every write it made carried the fencing token, so a target that saw a
 * newer holder refused it; throwing afterwards would turn a finished action into a second,
 * contradictory answer.
 */
export async function withLease<T>(store: LockStore, options: LeaseOptions, fn: (lease: Lease) => Promise<T>): Promise<T> {
  const askedAt = Date.now();
  const acquired = await store.acquire(options);
  if (!acquired.acquired) {
    const h = acquired.holder;
    throw new ArbiterError(
      'LOCK_HELD',
      `${options.resourceArn} is locked by ${h.agentId ?? h.owner} (token ${h.fencingToken}) until ${h.expiresAt.toISOString()}`);
  }
  const token = acquired.fencingToken;
  const controller = new AbortController();
  const renewEvery = options.renewEveryMs ?? Math.max(100, Math.floor(options.ttlMs / 3));
  // The local deadline: the TTL counted from when the last successful renewal was *asked* (the
  // database's expiry is at least that late), less a margin for clock rate and the abort to land.
  const margin = Math.min(renewEvery, Math.floor(options.ttlMs / 10));
  let validUntil = askedAt + options.ttlMs - margin;
  const live = () => !controller.signal.aborted && Date.now() < validUntil;
  let handedOff = false;
  const handOff = (): ReleaseInput => {
    handedOff = true;
    clearInterval(timer);
    return { resourceArn: options.resourceArn, owner: options.owner, fencingToken: token };
  };
  const timer = setInterval(() => {
    if (!live()) {
      // Renewals kept failing (the database is unreachable) or this process stalled: stop before
      // the lock can pass to someone else, not after.
      controller.abort(new ArbiterError('LOCK_LOST', `the lease on ${options.resourceArn} ran out before it could be renewed`));
      return;
    }
    const renewAskedAt = Date.now();
    store
      .renew({ resourceArn: options.resourceArn, owner: options.owner, fencingToken: token, ttlMs: options.ttlMs })
      .then((ok) => {
        if (ok) validUntil = Math.max(validUntil, renewAskedAt + options.ttlMs - margin);
        else controller.abort(new ArbiterError('LOCK_LOST', `lost the lock on ${options.resourceArn}`));
      })
      // A database blip is not a lost lock by itself; it counts against the local deadline.
      .catch(() => {});
  }, renewEvery);
  timer.unref();
  try {
    return await fn({ fencingToken: token, signal: controller.signal, live, handOff });
  } finally {
    clearInterval(timer);
    if (!handedOff && !options.holdIfAborted?.aborted) {
      await store.release({ resourceArn: options.resourceArn, owner: options.owner, fencingToken: token }).catch(() => false);
    }
  }
}
