import { isAction } from '../contract/actions.ts';
import type { RemediationRequest } from '../contract/request.ts';

export interface RequestLimits {
  maxParams: number;
  maxParamBytes: number;
  maxDependsOn: number;
  maxIdLength: number;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Everything wrong with a decoded request, as reasons an agent can act on. Empty when valid. */
export function validateRequest(request: RemediationRequest, limits: RequestLimits): string[] {
  const problems: string[] = [];
  if (!UUID.test(request.requestId)) problems.push(`requestId '${request.requestId.slice(0, 64)}' is not a UUID`);
  if (!request.agentId || request.agentId.length > limits.maxIdLength) {
    problems.push(`agentId must be 1..${limits.maxIdLength} characters`);
  }
  if (!isAction(request.action)) problems.push(`unknown action '${request.action.slice(0, 64)}'`);
  const paramCount = Object.keys(request.params).length;
  if (paramCount > limits.maxParams) problems.push(`${paramCount} params, more than the limit of ${limits.maxParams}`);
  const paramBytes = Buffer.byteLength(JSON.stringify(request.params));
  if (paramBytes > limits.maxParamBytes) problems.push(`params take ${paramBytes} bytes, more than the limit of ${limits.maxParamBytes}`);
  if (request.dependsOn.length > limits.maxDependsOn) {
    problems.push(`dependsOn has ${request.dependsOn.length} ids, more than the limit of ${limits.maxDependsOn}`);
  }
  for (const id of request.dependsOn) if (!UUID.test(id)) problems.push(`dependsOn id '${id.slice(0, 64)}' is not a UUID`);
  if (request.expectedVersion !== null && request.expectedVersion < 0) problems.push('expectedVersion must not be negative');
  return problems;
}
