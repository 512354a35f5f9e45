import { isAction } from '../contract/actions.ts';
import { paramCount, type RemediationRequest } from '../contract/request.ts';

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
  // Every request of a storm passes through here: checks are written out, without per-call arrays,
  // and the problems array is only made for a request that has one.
  let problems: string[] | null = null;
  const problem = (text: string) => (problems ??= []).push(text);
  if (!isRequestId(request.requestId)) problem(`requestId ${preview(request.requestId)} is not a UUID`);
  if (!request.agentId || request.agentId.length > limits.maxIdLength) problem(`agentId must be 1..${limits.maxIdLength} characters`);
  if (!isAction(request.action)) problem(`unknown action ${preview(request.action)}`);
  const params = paramCount(request.params);
  if (params > limits.maxParams) problem(`${params} params, more than the limit of ${limits.maxParams}`);
  const paramBytes = params === 0 ? 2 : Buffer.byteLength(JSON.stringify(request.params));
  if (paramBytes > limits.maxParamBytes) problem(`params take ${paramBytes} bytes, more than the limit of ${limits.maxParamBytes}`);
  const dependsOn = request.dependsOn;
  if (dependsOn.length > limits.maxDependsOn) problem(`dependsOn has ${dependsOn.length} ids, more than the limit of ${limits.maxDependsOn}`);
  for (let i = 0; i < dependsOn.length && i < limits.maxDependsOn; i++) {
    if (!isRequestId(dependsOn[i]!)) problem(`dependsOn id ${preview(dependsOn[i]!)} is not a UUID`);
  }
  if (request.expectedVersion !== null && request.expectedVersion < 0) problem('expectedVersion must not be negative');
  if (request.planId !== null && request.planId.length > limits.maxIdLength) problem(`planId must be at most ${limits.maxIdLength} characters`);
  if (request.incidentId !== null && request.incidentId.length > limits.maxIdLength) problem(`incidentId must be at most ${limits.maxIdLength} characters`);
  if (request.reason !== null) {
    const bytes = Buffer.byteLength(request.reason);
    if (bytes > limits.maxReasonBytes) problem(`reason takes ${bytes} bytes, more than the limit of ${limits.maxReasonBytes}`);
  }
  if (request.deadline !== null && !isTime(request.deadline)) problem(`deadline ${request.deadline} is not a valid time`);
  if (request.requestedAt !== null && !isTime(request.requestedAt)) problem(`requestedAt ${request.requestedAt} is not a valid time`);
  const withNul = fieldsWithNul(request);
  if (withNul) problem(`NUL characters are not allowed (in ${withNul.join(', ')})`);
  return problems ?? NONE;
}

/** What a valid request's validation returns: shared, so frozen. */
const NONE: string[] = Object.freeze([]) as unknown as string[];

const preview = (text: string) => `'${text.slice(0, 64).replace(/\0/g, '\\0')}'`;
const isTime = (value: number) => Number.isFinite(value) && Math.abs(value) <= MAX_EPOCH_MS;

/** The request's single string fields that a NUL would keep out of a text column. */
const TEXT_FIELDS = ['requestId', 'agentId', 'resourceArn', 'action', 'planId', 'reason', 'incidentId'] as const;

/**
 * The names of the fields holding a NUL, which no text column can store; null when none does (the
 * usual case, which allocates nothing).
 */
function fieldsWithNul(request: RemediationRequest): string[] | null {
  let fields: string[] | null = null;
  for (const name of TEXT_FIELDS) if (request[name]?.includes('\0')) (fields ??= []).push(name);
  for (const key in request.params) {
    if (key.includes('\0') || request.params[key]!.includes('\0')) {
      (fields ??= []).push('params');
      break;
    }
  }
  for (const id of request.dependsOn) {
    if (id.includes('\0')) {
      (fields ??= []).push('dependsOn');
      break;
    }
  }
  return fields;
}
