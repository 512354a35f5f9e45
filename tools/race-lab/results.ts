export type Mode = 'uncoordinated' | 'arbiter';

export interface Percentiles {
  p50: number;
  p99: number;
}

/** What one scenario did in one mode: the row of the side-by-side table. */
export interface RunResult {
  scenario: string;
  title: string;
  mode: Mode;
  requests: number;
  /** Changes the fleet actually applied (sum of version bumps on the scenario's resources). */
  executions: number;
  coalesced: number;
  rejected: Record<string, number>;
  deferred: number;
  failed: number;
  expired: number;
  violations: Record<string, number>;
  violationsTotal: number;
  /** Inconsistencies by kind: found by Arbiter's detector, or (uncoordinated) by its rules on the fleet's final observations. */
  findings: Record<string, number>;
  /** Arrival to first durable decision (Arbiter only). */
  decisionLatencyMs: Percentiles | null;
  /** Agent's view: from acting to knowing the result. */
  outcomeLatencyMs: Percentiles;
  /** Requests with no final outcome, or with more than one final decision in the audit trail. */
  missingOutcomes: number;
  duplicateFinals: number;
  durationMs: number;
}

export function percentiles(values: number[]): Percentiles {
  if (!values.length) return { p50: 0, p99: 0 };
  const sorted = [...values].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!;
  return { p50: round(at(0.5)), p99: round(at(0.99)) };
}

function round(v: number): number {
  return Math.round(v * 10) / 10;
}

export function countBy<T>(items: T[], key: (item: T) => string | null): Record<string, number> {
  const out: Record<string, number> = {};
  for (const item of items) {
    const k = key(item);
    if (k !== null) out[k] = (out[k] ?? 0) + 1;
  }
  return out;
}
