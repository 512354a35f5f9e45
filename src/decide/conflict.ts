export interface RecentChange {
  requestId: string;
  agentId: string;
  action: string;
  /** Epoch ms when the change completed. */
  at: number;
  /** Resource version the change produced. */
  resourceVersion: number | null;
}

export interface ConflictRules {
  windowMs: number;
  pairs: ReadonlyArray<readonly [string, string]>;
}

function conflicts(a: string, b: string, pairs: ConflictRules['pairs']): boolean {
  return pairs.some(([x, y]) => (x === a && y === b) || (x === b && y === a));
}

/**
 * A change that conflicts (per the matrix) with a recent change by another agent would undo it,
 * unless the requester had already seen that change (its expectedVersion is at or after the version
 * the change produced). Returns the reason, or null when there is no conflict.
 */
export function checkConflict(
  request: { agentId: string; action: string; expectedVersion: number | null },
  recent: readonly RecentChange[],
  rules: ConflictRules,
  now: number,
): string | null {
  for (const change of recent) {
    if (change.agentId === request.agentId) continue;
    if (now - change.at >= rules.windowMs) continue;
    if (!conflicts(request.action, change.action, rules.pairs)) continue;
    const seen =
      request.expectedVersion !== null && change.resourceVersion !== null && request.expectedVersion >= change.resourceVersion;
    if (seen) continue;
    return `${request.action} conflicts with ${change.action} by ${change.agentId} (request ${change.requestId}) ${Math.round((now - change.at) / 1000)}s ago; re-observe and decide again`;
  }
  return null;
}
