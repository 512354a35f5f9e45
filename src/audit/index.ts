export { AuditStore } from './audit-store.ts';
export type { ArrivalRow, DeadLetterRow, DecidedRequest, ExecutionRow, ResourceChange, StoredRequest } from './rows.ts';
export { isSameRequest, storableRequest } from './storable.ts';
export { runUpkeep, type UpkeepResult, type UpkeepSettings } from './upkeep.ts';
export { listDeadLetters, markReplayed, type DeadLetter, type DeadLetterSelection } from './dead-letters.ts';
export { deadLetterOf } from './dead-letter-side.ts';
