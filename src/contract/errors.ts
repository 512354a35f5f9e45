/**
 * Errors with stable codes. `retryable` tells the caller whether trying again can help;
 * a permanent error is audited and turned into an outcome, never retried forever.
 */
export type ErrorCode =
  | 'CONFIG_INVALID'
  | 'DECODE_FAILED'
  | 'INVALID_ARN'
  | 'INVALID_REQUEST'
  | 'UNAUTHORIZED'
  | 'LOCK_HELD'
  | 'LOCK_LOST'
  | 'FENCED'
  | 'EXECUTOR_FAILED'
  | 'EXECUTOR_UNAVAILABLE'
  | 'TIMEOUT'
  | 'STACK_FAILED';

export class ArbiterError extends Error {
  readonly code: ErrorCode;
  readonly retryable: boolean;

  constructor(code: ErrorCode, message: string, options: { retryable?: boolean; cause?: unknown } = {}) {
    super(message, { cause: options.cause });
    this.name = 'ArbiterError';
    this.code = code;
    this.retryable = options.retryable ?? false;
  }
}

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
