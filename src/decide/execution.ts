import type { Decision } from '../contract/decision.ts';
import { ArbiterError, errorMessage } from '../contract/errors.ts';

/** What the executor answered, and what verification read back. */
export interface ExecutionReport {
  fencingToken: number;
  result: { ok: boolean; detail: string; code?: string; version: number };
  /** Absent when the execution itself failed (nothing to verify). */
  verified?: { ok: boolean; version: number; detail: string };
}

/** Steps 9-10: the decision an execution ends in. */
export function decideExecution({ fencingToken, result, verified }: ExecutionReport): Decision {
  if (!result.ok) return { status: 'FAILED', rule: 'execute', detail: `${result.code ?? 'failed'}: ${result.detail}`, fencingToken };
  if (!verified || !verified.ok) {
    const detail = `verification failed: ${verified?.detail ?? 'not verified'}`;
    return { status: 'FAILED', rule: 'verify', detail, fencingToken, resourceVersion: verified?.version ?? null };
  }
  return { status: 'EXECUTED', rule: 'execute', detail: result.detail, fencingToken, resourceVersion: verified.version };
}

export interface RetryPolicy {
  /** Unexpected errors tolerated before the request ends FAILED. */
  maxAttempts: number;
  backoffMs: number;
  maxBackoffMs: number;
  /** Wait before trying again after LOCK_HELD (someone else holds the lock). */
  lockRetryMs: number;
}

/**
 * An error while deciding or executing becomes a decision: what the error's code says is
 * retryable waits and tries again (observing first whenever the action may have run); anything
 * unexpected is retried with exponential backoff `maxAttempts` times, then the request ends FAILED
 * with the error in its detail. `attempt` counts unexpected errors so far, this one included.
 */
export function decideOnError(error: unknown, attempt: number, policy: RetryPolicy, now: number): Decision {
  const message = errorMessage(error);
  if (error instanceof ArbiterError && error.retryable) {
    switch (error.code) {
      case 'LOCK_HELD':
        return { status: 'DEFERRED', rule: 'lock', detail: message, retryAt: now + policy.lockRetryMs };
      case 'FENCED':
        return { status: 'DEFERRED', rule: 'lock', detail: `fenced off: ${message}`, retryAt: now + policy.lockRetryMs, observeFirst: true };
      case 'LOCK_LOST':
        return { status: 'DEFERRED', rule: 'lock', detail: message, retryAt: now + policy.lockRetryMs, observeFirst: true };
      default:
        // Executor or registry unreachable, a timeout, a shutdown: the action may or may not have started.
        return { status: 'DEFERRED', rule: 'executor', detail: message, retryAt: now + policy.lockRetryMs, observeFirst: true };
    }
  }
  if (attempt >= policy.maxAttempts) {
    return { status: 'FAILED', rule: 'error', detail: `failed after ${attempt} attempt(s) with an unexpected error: ${message}` };
  }
  const backoff = Math.min(policy.maxBackoffMs, policy.backoffMs * 2 ** (attempt - 1));
  return {
    status: 'DEFERRED',
    rule: 'error',
    detail: `unexpected error (attempt ${attempt} of ${policy.maxAttempts}): ${message}`,
    retryAt: now + backoff,
    observeFirst: true,
  };
}
