import { isRetryable } from '../contract/errors.ts';
import { isConnectionError } from '../db/index.ts';
import type { Logger } from '../logging/index.ts';
import { retryWithBackoff } from '../contract/backoff.ts';

/**
 * An error that says a store was unreachable rather than that the work was wrong: the database or
 * the registry could not be reached, or the broker answered with an error kafkajs itself calls
 * retriable. The same work is tried again once the store is back.
 */
export function isTransient(error: unknown): boolean {
  if (isConnectionError(error) || isRetryable(error)) return true;
  return typeof error === 'object' && error !== null && (error as { retriable?: unknown }).retriable === true;
}

/**
 * Retries `work` while its errors are transient, with backoff, until it succeeds or `givenUp()`
 * says to stop (the process is stopping, or its start-up deadline passed). For start-up steps: a
 * registry or broker that is still warming up (a fresh Apicurio can take over 10 s to answer its
 * first registrations) is waited for, not a reason to exit.
 */
export async function untilAvailable<T>(what: string, work: () => Promise<T>, log: Pick<Logger, 'warn'>, givenUp: () => boolean = () => false): Promise<T> {
  return retryWithBackoff(work, (error, attempt) => {
    if (!isTransient(error) || givenUp()) return false;
    if (attempt === 1 || attempt % 10 === 0) log.warn({ err: error, attempt }, `waiting for ${what}`);
    return true;
  });
}
