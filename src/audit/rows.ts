import type { Decision, FinalDecision } from '../contract/decision.ts';
import type { RemediationRequest } from '../contract/request.ts';

/** A decision about a request, as the audit trail records it. */
export interface DecidedRequest {
  request: RemediationRequest;
  scope: string;
  decision: Decision;
  /** From the record's append time (arrival) or its arrival (head of queue) until this decision. */
  latencyMs?: number | null;
}

/** An arrival decision, with where the record came from (the partition owns the request's working state). */
export interface ArrivalRow extends DecidedRequest {
  topic: string;
  partition: number;
  offset: string;
  reroutedFrom: number | null;
  coalesceKey: string;
}

export interface DeadLetterRow {
  topic: string;
  partition: number;
  offset: string;
  key: Buffer | null;
  value: Buffer | null;
  headers: Record<string, string>;
  errorCode: string;
  error: string;
}

export interface ExecutionRow {
  requestId: string;
  resourceArn: string;
  scope: string;
  action: string;
  agentId: string;
  phase: 'started' | 'succeeded' | 'failed' | 'recovered' | 'abandoned';
  fencingToken: number | null;
  resourceVersion: number | null;
  detail: string | null;
}

/** The resource's state after a verified change: what Arbiter expects to observe next. */
export interface ResourceChange {
  arn: string;
  scope: string;
  version: number;
  expectedState: unknown;
  requestId: string;
  action: string;
  agentId: string;
}

/** A request's working state as stored (open ones are recovered when a partition is assigned). */
export interface StoredRequest {
  request: RemediationRequest;
  scope: string;
  partition: number;
  coalesceKey: string;
  /** The final decision, when there is one; null while the request waits or runs. */
  decision: FinalDecision | null;
  /** The last progress status while not final (ACCEPTED or DEFERRED). */
  status: string;
  receivedAt: number;
  finishedAt: number | null;
  outcomePublished: boolean;
  /** An execution was started and never finished: a worker died (or was stopped) mid-action. */
  executionStarted: boolean;
}
