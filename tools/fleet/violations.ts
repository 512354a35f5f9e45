/** Incoherent outcomes the fleet witnessed, whoever caused them: the benchmark's ground truth. */
export const VIOLATION_KINDS = [
  'overlapping_restart',
  'lost_hotfix',
  'below_min_available',
  'terminate_before_drain',
  'concurrent_conflicting_changes',
  // Not a race between agents: one requestId executed twice, which Arbiter promises never to do.
  'duplicate_execution',
] as const;
export type ViolationKind = (typeof VIOLATION_KINDS)[number];

export interface Violation {
  kind: ViolationKind;
  arn: string;
  /** Epoch milliseconds. */
  at: number;
  detail: string;
  requestIds: string[];
  agentIds: string[];
}

export interface ViolationReport {
  violations: Violation[];
  /** Every kind, zero included, so two runs compare key by key. */
  counts: Record<ViolationKind, number>;
  /** Violations counted but not kept, once the list is full. */
  dropped: number;
}

/** A run without Arbiter can produce violations without end; counts stay exact, the list is capped. */
const MAX_KEPT = 10_000;

export class ViolationLog {
  private readonly kept: Violation[] = [];
  private readonly counts = Object.fromEntries(VIOLATION_KINDS.map((kind) => [kind, 0])) as Record<ViolationKind, number>;
  private dropped = 0;

  /** Returns the stored record so an ongoing condition (a capacity dip) can deepen it in place. */
  record(violation: Omit<Violation, 'at'>, at: number = Date.now()): Violation {
    const stored: Violation = {
      ...violation,
      at,
      requestIds: unique(violation.requestIds),
      agentIds: unique(violation.agentIds),
    };
    this.counts[stored.kind] += 1;
    if (this.kept.length < MAX_KEPT) this.kept.push(stored);
    else this.dropped += 1;
    return stored;
  }

  count(kind: ViolationKind): number {
    return this.counts[kind];
  }

  report(): ViolationReport {
    return {
      violations: this.kept.map((v) => ({ ...v, requestIds: [...v.requestIds], agentIds: [...v.agentIds] })),
      counts: { ...this.counts },
      dropped: this.dropped,
    };
  }
}

export function unique(values: Iterable<string>): string[] {
  return [...new Set(values)];
}
