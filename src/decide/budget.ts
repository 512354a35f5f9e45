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

export interface BudgetRule {
  /** Regular expression over the workload's ARN, anchored at both ends. */
  match: string;
  minAvailable: MinAvailableSpec;
}

/** Budget rules compiled once at start-up: the first rule whose pattern matches a workload wins. */
export interface BudgetRules {
  minAvailableFor(workloadArn: string): MinAvailableSpec | null;
}

/** Compiles the rules, or lists every pattern that is not a valid regular expression (by index). */
export function compileBudgetRules(rules: readonly BudgetRule[]): { rules: BudgetRules } | { problems: Array<{ index: number; message: string }> } {
  const compiled: Array<{ regex: RegExp; minAvailable: MinAvailableSpec }> = [];
  const problems: Array<{ index: number; message: string }> = [];
  rules.forEach((rule, index) => {
    try {
      // Compiled alone first, so an unbalanced ')' cannot close the anchoring group early.
      new RegExp(rule.match);
      compiled.push({ regex: new RegExp(`^(?:${rule.match})$`), minAvailable: rule.minAvailable });
    } catch (error) {
      problems.push({ index, message: `not a valid regular expression: ${(error as Error).message}` });
    }
  });
  if (problems.length) return { problems };
  return {
    rules: {
      minAvailableFor: (arn) => compiled.find((r) => r.regex.test(arn))?.minAvailable ?? null,
    },
  };
}
