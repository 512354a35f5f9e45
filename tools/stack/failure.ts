import { ArbiterError, errorMessage } from '../../src/index.ts';
import { tailFile } from './daemon.ts';
import type { ServiceName } from './types.ts';

export const SERVICE_LABELS: Record<ServiceName, string> = {
  kafka: 'Kafka',
  registry: 'Schema registry (Apicurio)',
  postgres: 'PostgreSQL',
};

export function stackFailure(service: ServiceName, what: string, cause?: unknown): ArbiterError {
  const reason = cause === undefined ? '' : `: ${errorMessage(cause)}`;
  return new ArbiterError('STACK_FAILED', `${SERVICE_LABELS[service]}: ${what}${reason}`, { cause });
}

/** A service we launched did not come up: say so, where its log is, and what the log ends with. */
export function startFailure(service: ServiceName, logFile: string, cause: unknown): ArbiterError {
  return new ArbiterError(
    'STACK_FAILED',
    `${SERVICE_LABELS[service]} did not start: ${errorMessage(cause)}\n` +
      `Log: ${logFile}\n--- last 20 lines of the log ---\n${tailFile(logFile, 20)}`,
    { cause },
  );
}
