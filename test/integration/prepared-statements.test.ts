import { afterAll, describe, expect, it } from 'vitest';
import { AuditStore } from '../../src/audit/index.ts';
import { coalesceKey } from '../../src/coalesce/index.ts';
import { buildRequest } from '../../src/contract/request.ts';
import { createPool, preparedName } from '../../src/db/index.ts';
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

  it('a statement its caller names is prepared, on any pool, and its arrays arrive intact', async () => {
    const plain = createPool(databaseUrlFor('postgres'), { max: 1 });
    try {
      const text = 'SELECT count(*)::int AS n, string_agg(coalesce(x, \'<null>\'), \'|\' ORDER BY o) AS s FROM unnest($1::text[]) WITH ORDINALITY AS t(x, o)';
      const tricky = ['a,b', 'say "hi"', 'back\\slash', ' padded ', '{braced}', 'NULL', null, ''];
      const { rows } = await plain.query({ name: preparedName(text), text, values: [tricky] });
      expect(rows[0]).toEqual({ n: 8, s: 'a,b|say "hi"|back\\slash| padded |{braced}|NULL|<null>|' });
      await plain.query({ name: preparedName(text), text, values: [['x']] });
      const prepared = await plain.query<{ statement: string }>('SELECT statement FROM pg_prepared_statements');
      expect(prepared.rows.map((r) => r.statement)).toEqual([text]);
    } finally {
      await plain.end();
    }
  });
});

/**
 * The arrival statement is the worker's one prepared bulk statement: planning it cost PostgreSQL
 * more than running it for the few records a chunk holds at low load (docs/BENCHMARKS.md).
 */
describe('the arrival statement (on a pool like the worker\'s intake pool, which prepares nothing else)', () => {
  const { databaseUrl } = migratedDatabase('arbiter_prep', 1);
  const scope = deploymentArn('prep', 'api');

  it('is prepared once per connection and reused for chunks of any size', async () => {
    const intake = createPool(databaseUrl, { max: 1 });
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
      expect(rows.map((r) => r.statement.slice(0, 10))).toEqual(['WITH go AS']);
      expect((await intake.query('SELECT count(*)::int AS n FROM arbiter.request_state')).rows[0].n).toBe(301);
    } finally {
      await intake.end();
    }
  });
});
