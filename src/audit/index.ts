export { AuditStore } from './audit-store.ts';
export type { RequestRow, DecisionRow, RequestStateRow, DeadLetterRow, ExecutionRow, OpenRequest } from './rows.ts';
