/**
 * Errors with stable codes. Whether trying again can help is a property of the code, not of
 * the place that throws: a permanent error is audited and turned into an outcome, never retried
 * forever; a retryable one is tried again later (bounded by the request's deadline).
 */
export const ERROR_CODES = {
  CONFIG_INVALID: 'permanent',
  DECODE_FAILED: 'permanent',
  INVALID_ARN: 'permanent',
  INVALID_REQUEST: 'permanent',
  UNAUTHORIZED: 'permanent',
  /** A request id already decided, reused for a different request. */
  DUPLICATE_REQUEST_ID: 'permanent',
  /** Someone else holds the resource's lock. */
  LOCK_HELD: 'retryable',
  /** A renewal was refused while the action ran: whether it took effect must be observed. */
  LOCK_LOST: 'retryable',
  /** The target refused our fencing token: a newer lease holder exists. */
  FENCED: 'retryable',
  EXECUTOR_FAILED: 'permanent',
  /** The executor could not be reached or answered from a gateway: outcome unknown. */
  EXECUTOR_UNAVAILABLE: 'retryable',
  /** The schema registry could not be reached: the record may be fine, so it is fetched again. */
  REGISTRY_UNAVAILABLE: 'retryable',
  /** PostgreSQL could not be reached or restarted under us: the same work is tried again later. */
  DATABASE_UNAVAILABLE: 'retryable',
  /** Every connection of the worker's pool stayed in use while this waited for one (a storm's executions): tried again later. */
  DATABASE_BUSY: 'retryable',
  /** Another owner recorded this request's final decision first (a partition moved under us). */
  DECIDED_ELSEWHERE: 'permanent',
  /** The worker is shutting down; the request is left for the next owner. */
  SHUTTING_DOWN: 'retryable',
  TIMEOUT: 'retryable',
  STACK_FAILED: 'permanent',
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export class ArbiterError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options: { cause?: unknown } = {}) {
    super(message, { cause: options.cause });
    this.name = 'ArbiterError';
    this.code = code;
  }

  get retryable(): boolean {
    return ERROR_CODES[this.code] === 'retryable';
  }
}

/** True for an ArbiterError whose code says trying again can help. */
export function isRetryable(error: unknown): boolean {
  return error instanceof ArbiterError && error.retryable;
}

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
