import type { RemediationRequest } from '../contract/request.ts';
import type { OutcomeStatus, RemediationOutcome } from '../contract/outcome.ts';
import type { DecisionRow } from '../audit/index.ts';

/** Decisions also record progress that agents never see as an outcome: accepted into a queue, re-routed. */
export type DecisionStatus = OutcomeStatus | 'ACCEPTED' | 'REROUTED';

export interface OutcomeFields {
  status: DecisionStatus;
  final: boolean;
  primaryRequestId?: string | null;
  resourceVersion?: number | null;
  fencingToken?: number | null;
  detail?: string | null;
  latencyMs?: number | null;
}

export function buildOutcome(request: RemediationRequest, scope: string, fields: OutcomeFields, workerId: string, now = Date.now()): RemediationOutcome {
  return {
    requestId: request.requestId,
    agentId: request.agentId,
    resourceArn: request.resourceArn,
    action: request.action,
    scope,
    status: fields.status as OutcomeStatus,
    final: fields.final,
    primaryRequestId: fields.primaryRequestId ?? null,
    resourceVersion: fields.resourceVersion ?? null,
    fencingToken: fields.fencingToken ?? null,
    detail: fields.detail ?? null,
    requestedAt: request.requestedAt,
    decidedAt: now,
    completedAt: fields.final ? now : null,
    workerId,
  };
}

export function decisionRow(request: RemediationRequest, scope: string, fields: OutcomeFields): DecisionRow {
  return {
    requestId: request.requestId,
    agentId: request.agentId,
    resourceArn: request.resourceArn,
    scope,
    action: request.action,
    status: fields.status,
    final: fields.final,
    primaryRequestId: fields.primaryRequestId ?? null,
    resourceVersion: fields.resourceVersion ?? null,
    fencingToken: fields.fencingToken ?? null,
    detail: fields.detail ?? null,
    latencyMs: fields.latencyMs ?? null,
  };
}

/** What a coalesced request is told: it shares the primary's result. */
export function followerFields(primaryRequestId: string, primary: OutcomeFields): OutcomeFields {
  return {
    status: 'COALESCED',
    final: true,
    primaryRequestId,
    resourceVersion: primary.resourceVersion ?? null,
    fencingToken: primary.fencingToken ?? null,
    detail: `coalesced into ${primaryRequestId}, which ended ${primary.status}${primary.detail ? `: ${primary.detail}` : ''}`,
  };
}
