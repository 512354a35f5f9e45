import { isRetryable } from '../contract/errors.ts';
import { isConnectionError } from '../db/index.ts';

/**
 * An error that says a store was unreachable rather than that the work was wrong: the database or
 * the registry could not be reached, or the broker answered with an error kafkajs itself calls
 * retriable. The same work is tried again once the store is back.
 */
export function isTransient(error: unknown): boolean {
  if (isConnectionError(error) || isRetryable(error)) return true;
  return typeof error === 'object' && error !== null && (error as { retriable?: unknown }).retriable === true;
}

/** Exponential backoff from 100 ms, capped at 5 s. */
export function backoffMs(attempt: number): number {
  return Math.min(5_000, 100 * 2 ** Math.max(0, attempt - 1));
}
