import { ArbiterError } from '../contract/errors.ts';
import type { LockStore } from './lock-store.ts';

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
  /** Aborted when a renewal is refused: the holder must stop writing. */
  signal: AbortSignal;
}

/**
 * Runs `fn` while holding the lock, renewing it in the background, and releases it afterwards.
 * Throws LOCK_HELD (retryable) when someone else holds it. If a renewal is refused the lease's
 * signal aborts with LOCK_LOST: `fn` must stop writing. Once `fn` has returned, its result stands
 * and is returned as is — every write it made carried the fencing token, so a target that saw a
 * newer holder refused it; throwing afterwards would turn a finished action into a second,
 * contradictory answer.
 */
export async function withLease<T>(store: LockStore, options: LeaseOptions, fn: (lease: Lease) => Promise<T>): Promise<T> {
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
  const timer = setInterval(() => {
    store
      .renew({ resourceArn: options.resourceArn, owner: options.owner, fencingToken: token, ttlMs: options.ttlMs })
      .then((ok) => {
        if (!ok) controller.abort(new ArbiterError('LOCK_LOST', `lost the lock on ${options.resourceArn}`));
      })
      // A database blip is not a lost lock; the next tick tries again before the TTL runs out.
      .catch(() => {});
  }, renewEvery);
  timer.unref();
  try {
    return await fn({ fencingToken: token, signal: controller.signal });
  } finally {
    clearInterval(timer);
    if (!options.holdIfAborted?.aborted) {
      await store.release({ resourceArn: options.resourceArn, owner: options.owner, fencingToken: token }).catch(() => false);
    }
  }
}
