import type { RemediationRequest } from '../contract/request.ts';

/** A request as received, with where it came from. */
export interface RequestRow {
  request: RemediationRequest;
  scope: string;
  topic: string;
  partition: number;
  offset: string;
  reroutedFrom: number | null;
}

export interface DecisionRow {
  requestId: string;
  agentId: string;
  resourceArn: string;
  scope: string;
  action: string;
  status: string;
  final: boolean;
  primaryRequestId: string | null;
  resourceVersion: number | null;
  fencingToken: number | null;
  detail: string | null;
  latencyMs: number | null;
}

/** The working state of a request: idempotency key, durable queue entry and outcome outbox. */
export interface RequestStateRow {
  request: RemediationRequest;
  scope: string;
  topic: string;
  partition: number;
  coalesceKey: string;
  status: string;
  final: boolean;
  primaryRequestId: string | null;
  resourceVersion: number | null;
  fencingToken: number | null;
  detail: string | null;
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

/** An open request found when a partition is (re)assigned. */
export interface OpenRequest {
  request: RemediationRequest;
  scope: string;
  partition: number;
  coalesceKey: string;
  status: string;
  final: boolean;
  primaryRequestId: string | null;
  resourceVersion: number | null;
  fencingToken: number | null;
  detail: string | null;
  receivedAt: number;
  finishedAt: number | null;
  outcomePublished: boolean;
  /** An execution was started and never finished: a worker died mid-action. */
  executionStarted: boolean;
}
