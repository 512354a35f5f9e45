import type { RemediationRequest } from '../contract/request.ts';
import { redactParams } from './secret-params.ts';

/**
 * What the audit store writes must be storable whatever an agent sent: PostgreSQL text and jsonb
 * refuse NUL characters, and a rejected record may be arbitrarily large. Valid requests are within
 * the configured limits already; these caps bound what is kept of everything else.
 */
export const STORED_TEXT_MAX_CHARS = 8_192;
const STORED_LIST_MAX = 128;

/** Caps (in characters) of the request's shorter texts; `reason` and param values take STORED_TEXT_MAX_CHARS. */
const MAX_CHARS = { id: 64, name: 1_024, arn: 4_096, action: 256, paramKey: 256 } as const;

/** Whether text is storable as it is: no NUL, within `maxChars`. */
function fitsText(value: string, maxChars: number): boolean {
  return value.length <= maxChars && !value.includes('\0');
}

/** A NUL becomes U+FFFD (visible, not silently dropped); longer text is cut, marked with an ellipsis. */
export function storableText<T extends string | null | undefined>(value: T, maxChars = STORED_TEXT_MAX_CHARS): T {
  if (typeof value !== 'string' || fitsText(value, maxChars)) return value;
  const clean = value.includes('\0') ? value.replace(/\0/g, '\uFFFD') : value;
  return (clean.length > maxChars ? `${clean.slice(0, maxChars - 1)}…` : clean) as T;
}

/** A request as it may be stored: every string storable, lists and maps capped. */
export function storableRequest(request: RemediationRequest): RemediationRequest {
  // Every valid request is storable as it is (validation bounds it): no copy for the common case.
  if (isStorable(request)) return request;
  const params: Record<string, string> = {};
  for (const [k, v] of Object.entries(request.params).slice(0, STORED_LIST_MAX)) params[storableText(k, MAX_CHARS.paramKey)] = storableText(v);
  return {
    ...request,
    requestId: storableText(request.requestId, MAX_CHARS.id),
    agentId: storableText(request.agentId, MAX_CHARS.name),
    resourceArn: storableText(request.resourceArn, MAX_CHARS.arn),
    action: storableText(request.action, MAX_CHARS.action),
    params,
    dependsOn: request.dependsOn.slice(0, STORED_LIST_MAX).map((id) => storableText(id, MAX_CHARS.id)),
    planId: storableText(request.planId, MAX_CHARS.name),
    reason: storableText(request.reason),
    incidentId: storableText(request.incidentId, MAX_CHARS.name),
    deadline: storableTime(request.deadline),
    // Not a time (the request was rejected for it): stored as 0, deterministic for redelivery checks.
    requestedAt: storableTime(request.requestedAt) ?? 0,
  };
}

/** Whether storableRequest would change nothing: the same caps, checked without copying (or closures: it runs per request). */
function isStorable(r: RemediationRequest): boolean {
  if (!(fits(r.requestId, MAX_CHARS.id) && fits(r.agentId, MAX_CHARS.name) && fits(r.resourceArn, MAX_CHARS.arn) && fits(r.action, MAX_CHARS.action))) return false;
  if (!(fits(r.planId, MAX_CHARS.name) && fits(r.reason, STORED_TEXT_MAX_CHARS) && fits(r.incidentId, MAX_CHARS.name))) return false;
  if (r.deadline !== storableTime(r.deadline) || r.requestedAt !== storableTime(r.requestedAt)) return false;
  if (r.dependsOn.length > STORED_LIST_MAX) return false;
  for (const id of r.dependsOn) if (!fits(id, MAX_CHARS.id)) return false;
  let params = 0;
  for (const k in r.params) {
    if (++params > STORED_LIST_MAX || !fits(k, MAX_CHARS.paramKey) || !fits(r.params[k]!, STORED_TEXT_MAX_CHARS)) return false;
  }
  return true;
}

function fits(value: string | null, maxChars: number): boolean {
  return value === null || (typeof value === 'string' && fitsText(value, maxChars));
}

/** An epoch-ms time PostgreSQL and JavaScript can both hold, or null. */
export function storableTime(ms: number | null): number | null {
  return ms !== null && Number.isFinite(ms) && Math.abs(ms) <= 8.64e15 ? ms : null;
}

/**
 * Whether an arriving request is the one stored under its id (a redelivery) or another request
 * reusing the id. Compared as stored, with keys in a canonical order (jsonb reorders them). The
 * action's secret params (`secretParams`) are left out of the comparison on both sides, so a row
 * stored with them redacted still recognises its redelivery.
 */
export function isSameRequest(stored: RemediationRequest, arriving: RemediationRequest, secretParams: readonly string[] = []): boolean {
  const comparable = (r: RemediationRequest) => (secretParams.length ? { ...r, params: redactParams(r.params, secretParams) } : r);
  return canonical(comparable(stored)) === canonical(comparable(storableRequest(arriving)));
}

function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) : v,
  );
}
