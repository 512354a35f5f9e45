export { advancePlan, validatePlan, MAX_PLAN_STEPS, type PlanState, type PlanTransition, type StepFinish } from './machine.ts';
export { PlanStore, type OutboxRow, type PlanSummary } from './store.ts';
export { PlanRelay, specOf, type RelayContext } from './relay.ts';
