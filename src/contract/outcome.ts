export const FINAL_STATUSES = [
  'EXECUTED',
  'FAILED',
  'COALESCED',
  'REJECTED_STALE',
  'REJECTED_CONFLICT',
  'REJECTED_BUDGET',
  'REJECTED_UNAUTHORIZED',
  'REJECTED_INVALID',
  'REJECTED_DUPLICATE_ID',
  'REJECTED_PRECONDITION',
  'EXPIRED',
] as const;
export type FinalStatus = (typeof FINAL_STATUSES)[number];
/** DEFERRED is a progress status: the request is still pending and will get a final outcome later. */
export type OutcomeStatus = FinalStatus | 'DEFERRED';
export const OUTCOME_STATUSES: readonly OutcomeStatus[] = [...FINAL_STATUSES, 'DEFERRED'];

export function isFinalStatus(status: string): status is FinalStatus {
  return (FINAL_STATUSES as readonly string[]).includes(status);
}

/** An outcome as it travels on `arbiter.outcomes` (see schemas/remediation-outcome.avsc). */
export interface RemediationOutcome {
  requestId: string;
  agentId: string;
  resourceArn: string;
  action: string;
  scope: string;
  status: OutcomeStatus;
  final: boolean;
  primaryRequestId: string | null;
  resourceVersion: number | null;
  fencingToken: number | null;
  detail: string | null;
  requestedAt: number | null;
  decidedAt: number;
  completedAt: number | null;
  workerId: string | null;
}
