import { isAction } from '../contract/actions.ts';
import type { RemediationRequest } from '../contract/request.ts';

export interface RequestLimits {
  maxParams: number;
  maxParamBytes: number;
  maxDependsOn: number;
  /** agentId, planId, incidentId. */
  maxIdLength: number;
  maxReasonBytes: number;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** The range of a JavaScript Date (and well inside PostgreSQL's timestamptz). */
const MAX_EPOCH_MS = 8.64e15;

/** A request id is a UUID, in either case (the worker lower-cases ids on arrival; see normalizeIds). */
export function isRequestId(value: string): boolean {
  return UUID.test(value);
}

/** Everything wrong with a decoded request, as reasons an agent can act on. Empty when valid. */
export function validateRequest(request: RemediationRequest, limits: RequestLimits): string[] {
  const problems: string[] = [];
  const preview = (text: string) => `'${text.slice(0, 64).replace(/\0/g, '\\0')}'`;
  if (!isRequestId(request.requestId)) problems.push(`requestId ${preview(request.requestId)} is not a UUID`);
  if (!request.agentId || request.agentId.length > limits.maxIdLength) {
    problems.push(`agentId must be 1..${limits.maxIdLength} characters`);
  }
  if (!isAction(request.action)) problems.push(`unknown action ${preview(request.action)}`);
  const paramCount = Object.keys(request.params).length;
  if (paramCount > limits.maxParams) problems.push(`${paramCount} params, more than the limit of ${limits.maxParams}`);
  const paramBytes = Buffer.byteLength(JSON.stringify(request.params));
  if (paramBytes > limits.maxParamBytes) problems.push(`params take ${paramBytes} bytes, more than the limit of ${limits.maxParamBytes}`);
  if (request.dependsOn.length > limits.maxDependsOn) {
    problems.push(`dependsOn has ${request.dependsOn.length} ids, more than the limit of ${limits.maxDependsOn}`);
  }
  for (const id of request.dependsOn.slice(0, limits.maxDependsOn)) if (!isRequestId(id)) problems.push(`dependsOn id ${preview(id)} is not a UUID`);
  if (request.expectedVersion !== null && request.expectedVersion < 0) problems.push('expectedVersion must not be negative');
  for (const [field, value] of [['planId', request.planId], ['incidentId', request.incidentId]] as const) {
    if (value !== null && value.length > limits.maxIdLength) problems.push(`${field} must be at most ${limits.maxIdLength} characters`);
  }
  if (request.reason !== null) {
    const bytes = Buffer.byteLength(request.reason);
    if (bytes > limits.maxReasonBytes) problems.push(`reason takes ${bytes} bytes, more than the limit of ${limits.maxReasonBytes}`);
  }
  for (const [field, value] of [['deadline', request.deadline], ['requestedAt', request.requestedAt]] as const) {
    if (value !== null && !(Number.isFinite(value) && Math.abs(value) <= MAX_EPOCH_MS)) problems.push(`${field} ${value} is not a valid time`);
  }
  const withNul = fieldsWithNul(request);
  if (withNul.length) problems.push(`NUL characters are not allowed (in ${withNul.join(', ')})`);
  return problems;
}

/** The names of the string fields holding a NUL, which no text column can store. */
function fieldsWithNul(request: RemediationRequest): string[] {
  const fields: string[] = [];
  const check = (name: string, value: string | null) => value !== null && value.includes('\0') && fields.push(name);
  check('requestId', request.requestId);
  check('agentId', request.agentId);
  check('resourceArn', request.resourceArn);
  check('action', request.action);
  check('planId', request.planId);
  check('reason', request.reason);
  check('incidentId', request.incidentId);
  if (Object.entries(request.params).some(([k, v]) => k.includes('\0') || v.includes('\0'))) fields.push('params');
  if (request.dependsOn.some((id) => id.includes('\0'))) fields.push('dependsOn');
  return fields;
}
