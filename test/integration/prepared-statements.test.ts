import { afterAll, describe, expect, it } from 'vitest';
import { AuditStore } from '../../src/audit/index.ts';
import { coalesceKey } from '../../src/coalesce/index.ts';
import { buildRequest } from '../../src/contract/request.ts';
import { createPool, PREPARE_BULK } from '../../src/db/index.ts';
import { deploymentArn, podArn } from '../../tools/fleet/index.ts';
import { databaseUrlFor, migratedDatabase } from '../support/harness.ts';

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

  it('a bulk statement marked PREPARE_BULK is prepared all the same', async () => {
    await pool.query(`${PREPARE_BULK}SELECT count(*)::int AS n FROM unnest($1::int[]) AS x`, [[1, 2, 3]]);
    const { rows } = await pool.query<{ statement: string }>('SELECT statement FROM pg_prepared_statements WHERE statement LIKE $1', [`${PREPARE_BULK}%`]);
    expect(rows).toHaveLength(1);
  });
});

/**
 * The arrival statement is the worker's one prepared bulk statement: planning it cost PostgreSQL
 * more than running it for the few records a chunk holds at low load (docs/BENCHMARKS.md).
 */
describe('the arrival statement on a preparing pool (the worker\'s intake pool)', () => {
  const { databaseUrl } = migratedDatabase('arbiter_prep', 1);
  const scope = deploymentArn('prep', 'api');

  it('is prepared once per connection and reused for chunks of any size', async () => {
    const intake = createPool(databaseUrl, { max: 1, prepareStatements: true });
    try {
      const audit = new AuditStore(intake, 'worker-prep');
      const arrivals = (n: number, from: number) =>
        Array.from({ length: n }, (_, i) => {
          const arn = podArn(scope, 'api', from + i);
          const request = buildRequest({ agentId: 'agent-prep', resourceArn: arn, action: 'restart' });
          const decision = { status: 'ACCEPTED' as const, rule: 'accept' as const, notBefore: Date.now(), detail: 'accepted' };
          return { request, scope, topic: 'prep.requests', partition: 0, offset: String(from + i), reroutedFrom: null, coalesceKey: coalesceKey(arn, 'restart', {}), decision };
        });
      await audit.recordArrivals({ arrivals: arrivals(1, 0), deadLetters: [] });
      await audit.recordArrivals({ arrivals: arrivals(300, 1), deadLetters: [] });
      const { rows } = await intake.query<{ statement: string }>('SELECT statement FROM pg_prepared_statements');
      const arrival = rows.filter((r) => r.statement.startsWith(`${PREPARE_BULK}WITH go AS`));
      expect(arrival).toHaveLength(1);
      expect((await intake.query('SELECT count(*)::int AS n FROM arbiter.request_state')).rows[0].n).toBe(301);
    } finally {
      await intake.end();
    }
  });
});
