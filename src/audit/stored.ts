import type { FinalDecision } from '../contract/decision.ts';

/** The final decision a request_state row holds, or null while the request is open. */
export function storedDecision(r: Record<string, unknown>): FinalDecision | null {
  if (!r.final) return null;
  return {
    status: r.status,
    // Rows written before the rule was recorded (migration 0003) name none.
    rule: r.rule ?? 'execute',
    detail: (r.detail as string | null) ?? '',
    primaryRequestId: (r.primary_request_id as string | null) ?? null,
    resourceVersion: r.resource_version === null ? null : Number(r.resource_version),
    fencingToken: r.fencing_token === null ? null : Number(r.fencing_token),
  } as FinalDecision;
}

