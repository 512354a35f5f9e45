import { ArbiterError } from '../contract/errors.ts';

/**
 * The shape of an `arbiter audit` report and its three renderings' pure parts: cells for a terminal
 * table, RFC 4180 CSV, and JSON. No database here (reports.ts runs the queries).
 */

/** How a column's values are shown: JSON always carries the raw value (times as ISO 8601, durations in ms). */
export type ColumnType = 'text' | 'time' | 'duration' | 'number' | 'list' | 'counts' | 'json';

export interface ReportColumn {
  /** The JSON key and the CSV header. */
  key: string;
  /** The terminal table's header. */
  header: string;
  type: ColumnType;
}

/** A row: column key to value (text, number, Date, string list, counts object, JSON evidence, or null). */
export type ReportRow = Readonly<Record<string, unknown>>;

export interface ReportSection {
  /** The JSON key, and the name `--section` picks. */
  name: string;
  title: string;
  columns: readonly ReportColumn[];
  rows: readonly ReportRow[];
  /** More rows matched than --limit allowed. */
  truncated: boolean;
}

export interface ReportFilters {
  since?: Date;
  until?: Date;
  agent?: string;
  arn?: string;
  /** inconsistencies only: open | acknowledged | resolved. */
  status?: string;
  /** inconsistencies only: drift, lost_change, … */
  kind?: string;
  /** Rows per section at most (default 1000). */
  limit?: number;
}

export interface Report {
  report: string;
  filters: ReportFilters;
  sections: readonly ReportSection[];
}

/** A table cell longer than this is cut (JSON and CSV always carry the whole value). */
export const TABLE_CELL_MAX = 80;

/** A duration for people: 850ms, 12.3s, 4m05s, 2h10m, 3d04h. */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms)) return String(ms);
  const sign = ms < 0 ? '-' : '';
  const abs = Math.abs(ms);
  if (abs < 1_000) return `${sign}${Math.round(abs)}ms`;
  if (abs < 60_000) return `${sign}${(abs / 1_000).toFixed(abs < 10_000 ? 2 : 1)}s`;
  const pad = (n: number) => String(n).padStart(2, '0');
  const s = Math.floor(abs / 1_000);
  if (s < 3_600) return `${sign}${Math.floor(s / 60)}m${pad(s % 60)}s`;
  if (s < 86_400) return `${sign}${Math.floor(s / 3_600)}h${pad(Math.floor((s % 3_600) / 60))}m`;
  return `${sign}${Math.floor(s / 86_400)}d${pad(Math.floor((s % 86_400) / 3_600))}h`;
}

/** A value as text, the same for the table and CSV apart from durations and the empty marker. */
function cellText(value: unknown, type: ColumnType, forTable: boolean): string {
  if (value === null || value === undefined) return forTable ? '-' : '';
  if (value instanceof Date) return value.toISOString();
  if (type === 'duration' && typeof value === 'number') return forTable ? formatDuration(value) : String(value);
  if (type === 'counts' && typeof value === 'object' && !Array.isArray(value)) {
    return Object.entries(value as Record<string, unknown>)
      .map(([k, v]) => (typeof v === 'object' && v !== null ? `${k} (${cellText(v, 'counts', forTable)})` : `${k} ${String(v)}`))
      .join(forTable ? ', ' : '; ');
  }
  if (Array.isArray(value)) return value.map((v) => (typeof v === 'string' ? v : JSON.stringify(v))).join(forTable ? ', ' : '; ');
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value);
}

/** One row of a section as terminal-table cells (long text cut to TABLE_CELL_MAX). */
export function tableCells(section: Pick<ReportSection, 'columns'>, row: ReportRow): string[] {
  return section.columns.map((c) => {
    const text = cellText(row[c.key], c.type, true);
    return text.length > TABLE_CELL_MAX ? `${text.slice(0, TABLE_CELL_MAX - 3)}...` : text;
  });
}

/** RFC 4180: a field with a comma, quote, CR or LF is quoted, quotes doubled; lines end in CRLF. */
export function csvField(text: string): string {
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/** A section as CSV: a header line of column keys, then one line per row (lists joined with "; "). */
export function toCsv(section: Pick<ReportSection, 'columns' | 'rows'>): string {
  const lines = [section.columns.map((c) => csvField(c.key)).join(',')];
  for (const row of section.rows) lines.push(section.columns.map((c) => csvField(cellText(row[c.key], c.type, false))).join(','));
  return `${lines.join('\r\n')}\r\n`;
}

/** A value for JSON: times as ISO 8601, the rest as is. */
function jsonValue(value: unknown): unknown {
  if (value instanceof Date) return value.toISOString();
  if (value === undefined) return null;
  return value;
}

/** The report as one JSON document: its name, filters, and one array per section (keyed by section name). */
export function toJson(report: Report): Record<string, unknown> {
  const filters = Object.fromEntries(Object.entries(report.filters).filter(([, v]) => v !== undefined).map(([k, v]) => [k, jsonValue(v)]));
  const out: Record<string, unknown> = { report: report.report, filters };
  for (const section of report.sections) {
    out[section.name] = section.rows.map((row) => Object.fromEntries(section.columns.map((c) => [c.key, jsonValue(row[c.key])])));
  }
  const truncated = report.sections.filter((s) => s.truncated).map((s) => s.name);
  // Only when it happened: sections cut at --limit.
  if (truncated.length > 0) out.truncated = truncated;
  return out;
}

/** The sections to show: all, or the one named (an unknown name lists those there are). */
export function pickSections(report: Report, name: string | undefined): readonly ReportSection[] {
  if (name === undefined) return report.sections;
  const section = report.sections.find((s) => s.name === name);
  if (!section) throw new ArbiterError('INVALID_REQUEST', `report ${report.report} has no section "${name}"; it has: ${report.sections.map((s) => s.name).join(', ')}`);
  return [section];
}

export { parseTimeFilter } from '../contract/time-filter.ts';
