export { checkStale } from './stale.ts';
export { checkConflict, type RecentChange, type ConflictRules } from './conflict.ts';
export { checkBudget, resolveMinAvailable, type Capacity, type MinAvailableSpec } from './budget.ts';
export { validateRequest, type RequestLimits } from './validate.ts';
