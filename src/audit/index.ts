export { AuditStore } from './audit-store.ts';
export type { ArrivalWrite, KnownRequest } from './arrivals.ts';
export type { ArrivalRow, DeadLetterRow, DecidedRequest, ExecutionRow, ResourceChange, StoredRequest } from './rows.ts';
export { isSameRequest, storableRequest } from './storable.ts';
export { allSecretParamNames, redactParams, redactSecretParams, secretParamsOf, type SecretParams } from './secret-params.ts';
export { runUpkeep, type UpkeepResult, type UpkeepSettings } from './upkeep.ts';
export { listDeadLetters, markReplayed, type DeadLetter, type DeadLetterSelection } from './dead-letters.ts';
export { deadLetterOf, deadLetterSideRecord, type SideDeadLetterContext } from './dead-letter-side.ts';
export {
  ANALYST_VIEWS,
  DEFAULT_REPORT_LIMIT,
  FINDING_STATUSES,
  REPORT_NAMES,
  isReportName,
  runReport,
  type ReportName,
} from './reports.ts';
export {
  parseTimeFilter,
  pickSections,
  tableCells,
  toCsv,
  toJson,
  formatDuration,
  type Report,
  type ReportColumn,
  type ReportFilters,
  type ReportSection,
} from './report-format.ts';
export { acknowledgeFinding, type AcknowledgedFinding, type FindingAck } from './findings.ts';
