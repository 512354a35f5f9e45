import { randomUUID } from 'node:crypto';
import { runner } from 'node-pg-migrate';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { ensureDatabase, migrate, MIGRATIONS_DIR, pgConnectionString } from '../../src/db/index.ts';
import { databaseUrlFor, dropDatabase } from '../support/harness.ts';

/**
 * Migration 0015 moves the outbox of answers decided after arrival from a flag on request_state
 * (outcome_published) to a table of its own. An installation upgraded while answers were recorded
 * but not yet on Kafka must still publish them: they are carried into the table.
 */
describe('upgrading to the outbox table (migration 0015)', () => {
  const databaseUrl = databaseUrlFor(`arbiter_outbox_${randomUUID().slice(0, 8)}`);
  afterAll(() => dropDatabase(databaseUrl));

  it('carries answers recorded but unpublished into arbiter.outcome_outbox, and nothing else', async () => {
    await ensureDatabase(databaseUrl);
    // The schema as it was before: every migration up to 0014.
    await runner({
      databaseUrl: pgConnectionString(databaseUrl),
      dir: MIGRATIONS_DIR,
      direction: 'up',
      count: 14,
      migrationsTable: 'migrations',
      migrationsSchema: 'arbiter',
      createMigrationsSchema: true,
      checkOrder: true,
      log: () => {},
      logger: { debug: () => {}, info: () => {}, warn: () => {}, error: () => {} },
    });
    const db = new pg.Client({ connectionString: pgConnectionString(databaseUrl) });
    await db.connect();
    try {
      const [open, unsent, sent] = [randomUUID(), randomUUID(), randomUUID()];
      await db.query(
        `INSERT INTO arbiter.request_state (request_id, scope, topic, kafka_partition, resource_arn, action, agent_id, coalesce_key, status, final, request, finished_at, outcome_published)
         VALUES ($1, 's', 't', 3, 'arn:1', 'restart', 'a', 'k1', 'ACCEPTED', false, '{}', NULL, false),
                ($2, 's', 't', 4, 'arn:2', 'restart', 'a', 'k2', 'EXECUTED', true, '{}', now() - interval '1 minute', false),
                ($3, 's', 't', 5, 'arn:3', 'restart', 'a', 'k3', 'EXECUTED', true, '{}', now() - interval '1 minute', true)`,
        [open, unsent, sent],
      );

      const result = await migrate(databaseUrl);
      expect(result.applied).toEqual(expect.arrayContaining(['0015_outcome-outbox']));
      const { rows } = await db.query('SELECT request_id, topic, kafka_partition FROM arbiter.outcome_outbox');
      expect(rows).toEqual([{ request_id: unsent, topic: 't', kafka_partition: 4 }]);
      // The flag is gone: nothing reads or writes it any more.
      const { rows: columns } = await db.query(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = 'arbiter' AND table_name = 'request_state' AND column_name = 'outcome_published'",
      );
      expect(columns).toEqual([]);
    } finally {
      await db.end();
    }
  });
});
