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

/** One change applied to a resource, as an observer reports it. */
export interface ObservedChange {
  requestId: string;
  agentId: string | null;
  action: string;
  /** The version the change produced. */
  version: number;
  /** The version it was based on, when its author said (expectedVersion / basedOnVersion). */
  basedOnVersion: number | null;
  at: number;
}

/** An observation as it travels on `<prefix>.observations` (schemas/observation.avsc), keyed by scope. */
export interface ResourceObservation {
  observationId: string;
  resourceArn: string;
  version: number | null;
  /** JSON object text. */
  state: string;
  /** executor:<name>, agent:<id>, person:<id>. */
  source: string;
  observedAt: number;
  /** Requests whose change is still in effect; null when the observer cannot tell. */
  effectiveRequestIds: string[] | null;
  recentChanges: ObservedChange[];
}
