import { describe, expect, it } from 'vitest';
import { csvField, formatDuration, parseTimeFilter, pickSections, tableCells, TABLE_CELL_MAX, toCsv, toJson, type Report, type ReportSection } from '../../src/audit/report-format.ts';

/** A strict RFC 4180 reader: what a spreadsheet or `csv` module would make of our output. */
function parseCsv(text: string): string[][] {
  const records: string[][] = [];
  let record: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quoted) {
      if (c !== '"') field += c;
      else if (text[i + 1] === '"') {
        field += '"';
        i++;
      } else quoted = false;
    } else if (c === '"' && field === '') quoted = true;
    else if (c === ',') {
      record.push(field);
      field = '';
    } else if (c === '\r' && text[i + 1] === '\n') {
      record.push(field);
      records.push(record);
      record = [];
      field = '';
      i++;
    } else if (c === '"' || c === '\n' || c === '\r') throw new Error(`bare ${JSON.stringify(c)} at ${i}`);
    else field += c;
  }
  if (field !== '' || record.length) throw new Error('the last record is not ended by CRLF');
  return records;
}

const section: ReportSection = {
  name: 'things',
  title: 'Things',
  columns: [
    { key: 'at', header: 'at', type: 'time' },
    { key: 'agent', header: 'agent', type: 'text' },
    { key: 'heldMs', header: 'held', type: 'duration' },
    { key: 'agents', header: 'agents', type: 'list' },
    { key: 'asked', header: 'asked', type: 'counts' },
    { key: 'racedWith', header: 'raced with', type: 'counts' },
    { key: 'evidence', header: 'evidence', type: 'json' },
    { key: 'detail', header: 'detail', type: 'text' },
  ],
  rows: [
    {
      at: new Date('2025-03-04T05:06:07.089Z'),
      agent: 'alice',
      heldMs: 70_000,
      agents: ['alice', 'bob'],
      asked: { restart: 2, scale: 1 },
      racedWith: { bob: { lock_waited: 3, absorbed: 1 } },
      evidence: { agents: ['alice'], versions: { arbiter: 2, observed: 3 } },
      detail: 'pods crash-looping, "OOMKilled"\nsecond line',
    },
    { at: null, agent: '=cmd|x', heldMs: null, agents: [], asked: {}, racedWith: {}, evidence: null, detail: null },
  ],
  truncated: false,
};

describe('audit report formatting', () => {
  it('formats durations for people', () => {
    expect(formatDuration(0)).toBe('0ms');
    expect(formatDuration(850)).toBe('850ms');
    expect(formatDuration(1_234)).toBe('1.23s');
    expect(formatDuration(12_340)).toBe('12.3s');
    expect(formatDuration(245_000)).toBe('4m05s');
    expect(formatDuration(7_800_000)).toBe('2h10m');
    expect(formatDuration(273_600_000)).toBe('3d04h');
    expect(formatDuration(-1_500)).toBe('-1.50s');
  });

  it('quotes a CSV field only when it must (comma, quote, CR, LF), doubling quotes', () => {
    expect(csvField('plain')).toBe('plain');
    expect(csvField('a,b')).toBe('"a,b"');
    expect(csvField('say "hi"')).toBe('"say ""hi"""');
    expect(csvField('two\nlines')).toBe('"two\nlines"');
    expect(csvField('cr\r')).toBe('"cr\r"');
    expect(csvField('')).toBe('');
  });

  it('writes RFC 4180 CSV that reads back to the same cells: keys as headers, CRLF, raw durations, lists joined', () => {
    const csv = toCsv(section);
    expect(csv.endsWith('\r\n')).toBe(true);
    const records = parseCsv(csv);
    expect(records[0]).toEqual(['at', 'agent', 'heldMs', 'agents', 'asked', 'racedWith', 'evidence', 'detail']);
    expect(records[1]).toEqual([
      '2025-03-04T05:06:07.089Z',
      'alice',
      '70000',
      'alice; bob',
      'restart 2; scale 1',
      'bob (lock_waited 3; absorbed 1)',
      '{"agents":["alice"],"versions":{"arbiter":2,"observed":3}}',
      'pods crash-looping, "OOMKilled"\nsecond line',
    ]);
    // Empty, not "-" or "null", for missing values; a leading "=" is data, kept as is.
    expect(records[2]).toEqual(['', '=cmd|x', '', '', '', '', '', '']);
    expect(records).toHaveLength(3);
  });

  it('makes table cells: "-" for nothing, human durations, long text cut', () => {
    expect(tableCells(section, section.rows[0]!).slice(0, 6)).toEqual([
      '2025-03-04T05:06:07.089Z',
      'alice',
      '1m10s',
      'alice, bob',
      'restart 2, scale 1',
      'bob (lock_waited 3, absorbed 1)',
    ]);
    expect(tableCells(section, section.rows[1]!)).toEqual(['-', '=cmd|x', '-', '', '', '', '-', '-']);
    const long = tableCells({ columns: [{ key: 'd', header: 'd', type: 'text' }] }, { d: 'x'.repeat(500) })[0]!;
    expect(long).toHaveLength(TABLE_CELL_MAX);
    expect(long.endsWith('...')).toBe(true);
  });

  it('renders JSON with ISO times, raw values, the filters given, and which sections were cut', () => {
    const report: Report = {
      report: 'things',
      filters: { since: new Date('2025-01-01T00:00:00Z'), agent: 'alice', limit: 1 },
      sections: [section, { ...section, name: 'more', rows: [], truncated: true }],
    };
    const json = toJson(report);
    expect(json).toMatchObject({
      report: 'things',
      filters: { since: '2025-01-01T00:00:00.000Z', agent: 'alice', limit: 1 },
      things: [{ at: '2025-03-04T05:06:07.089Z', heldMs: 70_000, asked: { restart: 2, scale: 1 }, evidence: { versions: { observed: 3 } } }, { at: null }],
      more: [],
      truncated: ['more'],
    });
    expect(JSON.parse(JSON.stringify(json))).toEqual(json);
    expect(pickSections(report, 'more').map((s) => s.name)).toEqual(['more']);
    expect(pickSections(report, undefined)).toHaveLength(2);
    expect(() => pickSections(report, 'nope')).toThrow(/no section "nope"; it has: things, more/);
  });

  it('reads --since/--until as ISO 8601 or a duration ago', () => {
    const now = Date.parse('2025-06-01T12:00:00Z');
    expect(parseTimeFilter('15m', now).toISOString()).toBe('2025-06-01T11:45:00.000Z');
    expect(parseTimeFilter('90s', now).toISOString()).toBe('2025-06-01T11:58:30.000Z');
    expect(parseTimeFilter('2h', now).toISOString()).toBe('2025-06-01T10:00:00.000Z');
    expect(parseTimeFilter('1d', now).toISOString()).toBe('2025-05-31T12:00:00.000Z');
    expect(parseTimeFilter('1w', now).toISOString()).toBe('2025-05-25T12:00:00.000Z');
    expect(parseTimeFilter('2025-05-01T00:00:00Z', now).toISOString()).toBe('2025-05-01T00:00:00.000Z');
    expect(() => parseTimeFilter('yesterday', now)).toThrow(/neither an ISO 8601 time nor a duration/);
  });
});
