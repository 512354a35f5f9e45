import { ArbiterError } from '../contract/errors.ts';

/** Settles as `work` does, or rejects with TIMEOUT naming `what` after `ms`; the work itself is not cancelled. */
export function withDeadline<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new ArbiterError('TIMEOUT', `${what} did not finish within ${ms} ms`)), ms);
    timer.unref();
  });
  return Promise.race([work, expired]).finally(() => clearTimeout(timer));
}
