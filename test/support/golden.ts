import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { isDeepStrictEqual } from 'node:util';

/** A row as a golden file holds it: JSON values only. */
export type GoldenRow = Record<string, unknown>;
/** Named answers (a view, a table query, a report section), each a list of rows. */
export type GoldenAnswers = Record<string, GoldenRow[]>;

/** A UUID derived from a seed and a label: the same ids every run, so a storm can be replayed. */
export function seededUuid(seed: string, label: string): string {
  const h = createHash('sha256').update(`${seed}:${label}`).digest('hex');
  // Version 5 and the RFC 4122 variant, as a name-based UUID would have.
  const variant = ((parseInt(h[16]!, 16) & 0x3) | 0x8).toString(16);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-5${h.slice(13, 16)}-${variant}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/gi;
const ISO_TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/;
/** A timestamp as PostgreSQL prints one inside text ('expired unreleased at 2026-12-01 03:30:00.123+00'). */
const PG_TIME_IN_TEXT = /\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(\.\d+)?([+-]\d\d(:\d\d)?|Z)?/g;

export interface NormaliseRules {
  /** Known ids and the stable names they get (the storm's own request, plan and observation ids). */
  labels: ReadonlyMap<string, string>;
  /** Text replaced wherever it occurs: worker ids, the topic prefix, and abbreviations (the ARNs' common head). */
  replace: ReadonlyArray<readonly [string, string]>;
  /** Columns whose values vary run to run however the storm is designed (latency, timings): kept as a placeholder. */
  varying: ReadonlySet<string>;
  /** Text patterns that vary inside otherwise fixed details, each with its placeholder. */
  textPatterns: ReadonlyArray<readonly [RegExp, string]>;
}

/**
 * One value, normalised: times become '<time>' (null stays null, so "has a time" still counts),
 * ids their label (unknown ones '<uuid>'), run-specific names their placeholder. Everything else —
 * statuses, counts, agents, details — is kept as it is.
 */
export function normaliseValue(value: unknown, rules: NormaliseRules, column?: string): unknown {
  if (value === null || value === undefined) return null;
  if (column !== undefined && rules.varying.has(column)) return '<varies>';
  if (value instanceof Date) return '<time>';
  if (Array.isArray(value)) return value.map((v) => normaliseValue(v, rules));
  if (typeof value === 'object') {
    // Keys sorted: the order a JSON object or a report's counts were built in is not an answer.
    const entries = Object.entries(value as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return Object.fromEntries(entries.map(([k, v]) => [k, normaliseValue(v, rules, k)]));
  }
  if (typeof value === 'string') {
    if (ISO_TIME.test(value)) return '<time>';
    let text = value;
    for (const [from, to] of rules.replace) text = text.split(from).join(to);
    text = text.replace(UUID, (id) => rules.labels.get(id.toLowerCase()) ?? '<uuid>');
    text = text.replace(PG_TIME_IN_TEXT, '<time>');
    for (const [pattern, placeholder] of rules.textPatterns) text = text.replace(pattern, placeholder);
    return text;
  }
  return value;
}

/** Rows normalised and sorted (the order of rows that share a timestamp is not an answer). */
export function normaliseRows(rows: readonly GoldenRow[], rules: NormaliseRules): GoldenRow[] {
  return rows
    // A row's columns keep their order (the view's), for whoever reads the golden file.
    .map((row) => Object.fromEntries(Object.entries(row).map(([k, v]) => [k, normaliseValue(v, rules, k)])))
    .map((row) => ({ row, key: JSON.stringify(row) }))
    .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
    .map((r) => r.row);
}

/**
 * The golden file: per answer its columns once, then one row per line (values in column order), so
 * the file stays half the size and a change shows up in a diff as the rows it touches.
 */
export function writeGolden(path: string, answers: GoldenAnswers): void {
  const names = Object.keys(answers).sort();
  const body = names.map((name) => {
    const rows = answers[name]!;
    const columns = rows.length ? Object.keys(rows[0]!) : [];
    const lines = rows.map((row) => {
      if (JSON.stringify(Object.keys(row)) !== JSON.stringify(columns)) throw new Error(`${name}: rows with different columns (${Object.keys(row).join(', ')})`);
      return `      ${JSON.stringify(columns.map((c) => row[c]))}`;
    });
    return `  ${JSON.stringify(name)}: {\n    "columns": ${JSON.stringify(columns)},\n    "rows": [${lines.length ? `\n${lines.join(',\n')}\n    ` : ''}]\n  }`;
  });
  writeFileSync(path, `{\n${body.join(',\n')}\n}\n`);
}

export function readGolden(path: string): GoldenAnswers {
  const file = JSON.parse(readFileSync(path, 'utf8')) as Record<string, { columns: string[]; rows: unknown[][] }>;
  return Object.fromEntries(
    Object.entries(file).map(([name, { columns, rows }]) => [name, rows.map((values) => Object.fromEntries(columns.map((c, i) => [c, values[i]])))]),
  );
}

/**
 * What differs, readably: per answer, rows the golden has and this run lacks, and rows this run
 * has that the golden lacks (both as multisets), at most `perAnswer` of each. Empty when equal.
 */
export function describeDifferences(golden: GoldenAnswers, actual: GoldenAnswers, perAnswer = 5): string[] {
  const out: string[] = [];
  for (const name of [...new Set([...Object.keys(golden), ...Object.keys(actual)])].sort()) {
    const expected = golden[name];
    const got = actual[name];
    if (!expected) {
      out.push(`${name}: not in the golden file (${got!.length} rows now)`);
      continue;
    }
    if (!got) {
      out.push(`${name}: missing now (the golden file has ${expected.length} rows)`);
      continue;
    }
    if (isDeepStrictEqual(expected, got)) continue;
    const missing = multisetMinus(expected, got);
    const extra = multisetMinus(got, expected);
    out.push(`${name}: ${expected.length} rows in the golden file, ${got.length} now; ${missing.length} missing, ${extra.length} unexpected`);
    for (const row of missing.slice(0, perAnswer)) out.push(`  - ${JSON.stringify(row)}`);
    if (missing.length > perAnswer) out.push(`  - … ${missing.length - perAnswer} more missing`);
    for (const row of extra.slice(0, perAnswer)) out.push(`  + ${JSON.stringify(row)}`);
    if (extra.length > perAnswer) out.push(`  + … ${extra.length - perAnswer} more unexpected`);
  }
  return out;
}

function multisetMinus(a: readonly GoldenRow[], b: readonly GoldenRow[]): GoldenRow[] {
  const counts = new Map<string, number>();
  for (const row of b) counts.set(JSON.stringify(row), (counts.get(JSON.stringify(row)) ?? 0) + 1);
  const left: GoldenRow[] = [];
  for (const row of a) {
    const key = JSON.stringify(row);
    const n = counts.get(key) ?? 0;
    if (n > 0) counts.set(key, n - 1);
    else left.push(row);
  }
  return left;
}
