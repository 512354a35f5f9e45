import { afterAll, describe, expect, it } from 'vitest';
import { createPool } from '../../src/db/index.ts';
import { databaseUrlFor } from '../support/harness.ts';

/**
 * The worker's pool prepares its small statements once per connection (named statements), and
 * leaves bulk ones (unnest, ANY) and `*` reads unnamed: their best plan depends on the data, and a
 * prepared `*` read breaks when a migration adds a column.
 */
describe('prepared statements (createPool prepareStatements)', () => {
  const pool = createPool(databaseUrlFor('postgres'), { max: 1, prepareStatements: true });
  afterAll(() => pool.end());

  it('a small parameterised statement is prepared once and reused; unnest, ANY and * are not prepared', async () => {
    for (let i = 0; i < 3; i++) expect((await pool.query('SELECT $1::int + 1 AS x', [i])).rows[0].x).toBe(i + 1);
    await pool.query('SELECT x FROM unnest($1::int[]) AS x', [[1, 2]]);
    await pool.query('SELECT 1 AS x WHERE 1 = ANY($1::int[])', [[1]]);
    await pool.query('SELECT * FROM (SELECT $1::int AS x) t', [1]);
    const { rows } = await pool.query<{ statement: string }>('SELECT statement FROM pg_prepared_statements ORDER BY prepare_time');
    expect(rows.map((r) => r.statement)).toEqual(['SELECT $1::int + 1 AS x']);
  });

  it('without the option nothing is prepared', async () => {
    const plain = createPool(databaseUrlFor('postgres'), { max: 1 });
    try {
      await plain.query('SELECT $1::int + 2 AS x', [1]);
      expect((await plain.query('SELECT count(*)::int AS n FROM pg_prepared_statements')).rows[0].n).toBe(0);
    } finally {
      await plain.end();
    }
  });
});
