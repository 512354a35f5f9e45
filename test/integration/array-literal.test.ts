import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { createPool } from '../../src/db/index.ts';
import { arrayLiteral } from '../../src/db/array-literal.ts';
import { databaseUrlFor } from '../support/harness.ts';

/**
 * Array parameters go to PostgreSQL as literals built by arrayLiteral (src/db/array-literal.ts),
 * which quotes only what needs quoting. What PostgreSQL reads back must be what was sent, for every
 * string an agent could put in a field.
 */
describe('array parameters (arrayLiteral, through createPool)', () => {
  const pool = createPool(databaseUrlFor('postgres'), { max: 1 });
  afterAll(() => pool.end());

  const awkward = [
    'plain',
    'arn:aws:ecs:eu-west-1:123456789012:service/payments/api',
    '',
    'NULL',
    'null',
    'Null',
    ' leading',
    'trailing ',
    'in side',
    'tab\there',
    'line\nbreak',
    'a,b',
    '{braces}',
    'quote"inside',
    '"quoted"',
    'back\\slash',
    '\\',
    '"',
    "it's",
    'ünïcødé ✓',
    '\u00a0nbsp',
    null,
  ];

  it('is what the pool’s connections send arrays with', async () => {
    const client = await pool.connect();
    try {
      expect(client.query).not.toBe(pg.Client.prototype.query);
    } finally {
      client.release();
    }
  });

  it('strings come back exactly, NULL as the null value and "NULL" as the word', async () => {
    expect(arrayLiteral(awkward)).toBeTypeOf('string');
    const { rows } = await pool.query<{ v: string | null; i: string }>('SELECT v, i FROM unnest($1::text[]) WITH ORDINALITY AS u(v, i) ORDER BY i', [awkward]);
    expect(rows.map((r) => r.v)).toEqual(awkward);
  });

  it('numbers, booleans, uuids and timestamps in milliseconds keep their values', async () => {
    const { rows } = await pool.query<{ n: string; f: number; b: boolean; u: string }>(
      'SELECT n::text, f, b, u::text FROM unnest($1::bigint[], $2::float8[], $3::boolean[], $4::uuid[]) AS t(n, f, b, u)',
      [
        [1, -2, 9_007_199_254_740_991, null],
        [1.5, 1_764_600_000_000.25, -0.125, null],
        [true, false, null, true],
        ['0f8c3b5e-1234-4abc-9def-000000000001', null, 'AAAAAAAA-1234-4abc-9def-000000000002', '0f8c3b5e-1234-4abc-9def-000000000003'],
      ],
    );
    expect(rows.map((r) => r.n)).toEqual(['1', '-2', '9007199254740991', null]);
    expect(rows.map((r) => r.f)).toEqual([1.5, 1_764_600_000_000.25, -0.125, null]);
    expect(rows.map((r) => r.b)).toEqual([true, false, null, true]);
    expect(rows.map((r) => r.u)).toEqual(['0f8c3b5e-1234-4abc-9def-000000000001', null, 'aaaaaaaa-1234-4abc-9def-000000000002', '0f8c3b5e-1234-4abc-9def-000000000003']);
  });

  it('leaves Buffers, Dates and nested arrays to node-postgres, which still sends them right', async () => {
    const bytes = [Buffer.from([0, 1, 255]), null];
    expect(arrayLiteral(bytes)).toBe(bytes);
    const { rows } = await pool.query<{ b: Buffer | null }>('SELECT b FROM unnest($1::bytea[]) AS u(b)', [bytes]);
    expect(rows.map((r) => r.b)).toEqual(bytes);
    const nested = [[1, 2], [3, 4]];
    expect(arrayLiteral(nested)).toBe(nested);
    expect((await pool.query<{ s: number }>('SELECT sum(x)::int AS s FROM unnest($1::int[]) AS x', [nested])).rows[0]!.s).toBe(10);
  });
});
