/** A count (3) or a percentage of desired replicas ("50%", rounded up as Kubernetes does). */
export type MinAvailableSpec = number | string;

export function resolveMinAvailable(spec: MinAvailableSpec, desired: number): number {
  if (typeof spec === 'number') return spec;
  if (spec.endsWith('%')) return Math.ceil((Number(spec.slice(0, -1)) / 100) * desired);
  return Number(spec);
}

export interface Capacity {
  desired: number;
  available: number;
  minAvailable: number;
}

/**
 * A disruptive action takes one replica away while it runs. It may proceed only if the workload
 * stays at or above its minimum available. Returns the reason it may not, or null.
 */
export function checkBudget(capacity: Capacity, unavailableAfter = 1): string | null {
  const after = capacity.available - unavailableAfter;
  if (after >= capacity.minAvailable) return null;
  return `would leave ${after} of ${capacity.desired} available, below the minimum of ${capacity.minAvailable}`;
}
