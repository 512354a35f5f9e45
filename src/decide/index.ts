export { decideArrival, type Arrival, type ArrivalRules, type ArrivalView } from './arrival.ts';
export { decideAtHead, type DependencyState, type HeadFacts, type HeadRules, type HeadStep, type QueuedRequest } from './head.ts';
export { decideExecution, decideOnError, type ExecutionReport, type RetryPolicy } from './execution.ts';
export { checkStale } from './stale.ts';
export { checkConflict, type RecentChange, type ConflictRules } from './conflict.ts';
export {
  checkBudget,
  compileBudgetRules,
  resolveMinAvailable,
  type BudgetRule,
  type BudgetRules,
  type Capacity,
  type MinAvailableSpec,
} from './budget.ts';
export { isRequestId, validateRequest, type RequestLimits } from './validate.ts';
export { authenticate, type Authentication, type SignatureRules } from './authenticate.ts';
