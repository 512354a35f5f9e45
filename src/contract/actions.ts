/** The actions Arbiter knows. Anything else is REJECTED_INVALID. */
/**
 * `cordon` (a node: no new pods) and `evict` (one pod off its node, replaced elsewhere) are the steps
 * a node drain is made of when Arbiter runs it through every workload's budget (docs/PLANS.md).
 */
export const ACTIONS = ['restart', 'rollback', 'hotfix', 'deploy', 'scale', 'drain', 'terminate', 'cordon', 'evict'] as const;
export type ActionName = (typeof ACTIONS)[number];

export function isAction(value: string): value is ActionName {
  return (ACTIONS as readonly string[]).includes(value);
}

/** Actions that take capacity away while they run or after; they are checked against the disruption budget. */
export const DISRUPTIVE_ACTIONS: ReadonlySet<ActionName> = new Set(['restart', 'drain', 'terminate', 'evict']);
