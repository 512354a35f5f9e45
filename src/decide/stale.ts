import type { RemediationRequest } from '../contract/request.ts';

/** A request based on a version other than the current one was made on a picture that is out of date. */
export function checkStale(request: Pick<RemediationRequest, 'expectedVersion'>, currentVersion: number): string | null {
  if (request.expectedVersion === null || request.expectedVersion === currentVersion) return null;
  return `expected version ${request.expectedVersion} but the resource is at version ${currentVersion}; re-observe and decide again`;
}
