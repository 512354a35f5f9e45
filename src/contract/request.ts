import type { ActionName } from './actions.ts';
import { newId } from './ids.ts';

/** A remediation request as it travels on `arbiter.requests` (see schemas/remediation-request.avsc). */
export interface RemediationRequest {
  requestId: string;
  agentId: string;
  resourceArn: string;
  /** Kept as a string on the wire so an unknown action decodes and can be rejected with a reason. */
  action: ActionName | string;
  params: Record<string, string>;
  expectedVersion: number | null;
  dependsOn: string[];
  planId: string | null;
  step: number | null;
  /** Epoch milliseconds. */
  deadline: number | null;
  reason: string | null;
  incidentId: string | null;
  /** Epoch milliseconds. */
  requestedAt: number;
}

export type RequestInput = Pick<RemediationRequest, 'agentId' | 'resourceArn' | 'action'> &
  Partial<Omit<RemediationRequest, 'agentId' | 'resourceArn' | 'action'>>;

/** Fills the optional fields of a request the way the schema defaults would. */
export function buildRequest(input: RequestInput, now: number = Date.now()): RemediationRequest {
  return {
    requestId: input.requestId ?? newId(),
    agentId: input.agentId,
    resourceArn: input.resourceArn,
    action: input.action,
    params: input.params ?? {},
    expectedVersion: input.expectedVersion ?? null,
    dependsOn: input.dependsOn ?? [],
    planId: input.planId ?? null,
    step: input.step ?? null,
    deadline: input.deadline ?? null,
    reason: input.reason ?? null,
    incidentId: input.incidentId ?? null,
    requestedAt: input.requestedAt ?? now,
  };
}

const ANY_CASE_UUID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;

/**
 * Request ids compare as PostgreSQL's uuid type does: case-insensitively. They are lower-cased on
 * arrival, so a redelivered upper-case id is recognised as the one already decided.
 */
export function normalizeIds(request: RemediationRequest): RemediationRequest {
  const requestId = normalizeRequestId(request.requestId);
  const dependsOn = request.dependsOn.map(normalizeRequestId);
  if (requestId === request.requestId && dependsOn.every((id, i) => id === request.dependsOn[i])) return request;
  return { ...request, requestId, dependsOn };
}

/** A UUID in lower case; anything else as it is (validation rejects it). */
export function normalizeRequestId(id: string): string {
  return ANY_CASE_UUID.test(id) ? id.toLowerCase() : id;
}

/**
 * How many entries a request's params hold: Object.keys(params).length without the array, since
 * every record of a storm is asked (validation, the coalesce key, the audit row).
 */
export function paramCount(params: Readonly<Record<string, string>>): number {
  let count = 0;
  for (const key in params) if (Object.hasOwn(params, key)) count++;
  return count;
}
