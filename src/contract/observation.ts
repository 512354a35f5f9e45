/** What an executor reports about a resource: the facts the head-of-queue rules decide on. */
export interface Observation {
  arn: string;
  exists: boolean;
  kind: 'deployment' | 'pod' | 'node' | 'unknown';
  /** Bumped by every executed change. */
  version: number;
  /** Kind-specific, JSON. */
  state: Record<string, unknown>;
  /** For budget checks: the workload this resource counts against, with its capacity. */
  workload?: { arn: string; desired: number; available: number; minAvailable: number };
  /** Recent requestIds applied to this resource (bounded, newest last). */
  appliedRequestIds: string[];
  /** RequestIds currently executing on this resource. */
  inProgressRequestIds: string[];
}
