import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { runUpkeep } from '../../src/audit/index.ts';
import { migrate } from '../../src/db/index.ts';
import { migratedDatabase } from '../support/harness.ts';

/**
 * Monthly partitions are created ahead of time by workers, not only by `migrate`: after months
 * without a migration, rows land in the default partitions, and creating the month they belong to
 * used to fail (and with it the next migration). Retention drops old partitions.
 */
describe('partition upkeep', () => {
  const { databaseUrl, pool: db } = migratedDatabase('arbiter_upkeep', 2);

  const decisionAt = (offset: string) =>
    db.query(
      `INSERT INTO arbiter.decision_log (request_id, agent_id, resource_arn, scope, action, status, final, decided_at)
       VALUES ($1, 'agent', 'arn:aws:k8s:r:1:cluster/c/node/n', 'scope', 'restart', 'EXECUTED', true, now() + $2::interval)`,
      [randomUUID(), offset],
    );
  const whereRows = async () =>
    (await db.query('SELECT tableoid::regclass::text AS part, count(*)::int AS n FROM arbiter.decision_log GROUP BY 1 ORDER BY 1')).rows;

  it('migrate succeeds after rows landed in a default partition, and moves them into their month', async () => {
    await decisionAt('5 months'); // beyond the partitions made ahead: caught by the default partition
    expect(await whereRows()).toEqual([{ part: 'arbiter.decision_log_default', n: 1 }]);
    // Months later, migrate (or a worker's upkeep) creates that month's partition.
    const result = await migrate(databaseUrl, () => {}, { partitionMonthsAhead: 6 });
    expect(result.applied).toEqual([]); // migrating twice is a no-op for the schema
    const rows = await whereRows();
    expect(rows).toHaveLength(1);
    expect(rows[0]!.part).toMatch(/^arbiter\.decision_log_\d{4}_\d{2}$/);
    // …and it is idempotent.
    await runUpkeep(db, { partitionMonthsAhead: 6, retentionDays: 0 });
    expect(await whereRows()).toEqual(rows);
  });

  it('retention drops partitions older than the period and prunes finished working state', async () => {
    await db.query("SELECT arbiter.ensure_partition('decision_log', (now() - interval '14 months')::date)");
    await decisionAt('-14 months');
    const { rows: named } = await db.query("SELECT 'arbiter.decision_log_' || to_char(now() - interval '14 months', 'YYYY_MM') AS part");
    const old = (await whereRows()).find((r) => r.part === named[0].part);
    expect(old).toEqual({ part: named[0].part, n: 1 });
    // Two old finished requests: one answered, one whose answer is still in the outbox (kept until it is out).
    const [id, unsent] = [randomUUID(), randomUUID()];
    await db.query(
      `INSERT INTO arbiter.request_state (request_id, scope, topic, kafka_partition, resource_arn, action, agent_id, coalesce_key, status, final, request, finished_at)
       SELECT id, 's', 't', 0, 'arn', 'restart', 'a', '', 'EXECUTED', true, '{}', now() - interval '400 days' FROM unnest($1::uuid[]) AS id`,
      [[id, unsent]],
    );
    await db.query(`INSERT INTO arbiter.outcome_outbox (request_id, topic, kafka_partition) VALUES ($1, 't', 0)`, [unsent]);

    const result = await runUpkeep(db, { partitionMonthsAhead: 2, retentionDays: 365 });
    expect(result.droppedPartitions).toContain(old!.part.replace('arbiter.', ''));
    expect(result.prunedRequests).toBe(1);
    const { rows: left } = await db.query('SELECT request_id FROM arbiter.request_state WHERE request_id = ANY($1::uuid[])', [[id, unsent]]);
    expect(left.map((r) => r.request_id)).toEqual([unsent]);
    expect((await whereRows()).some((r) => r.part === old!.part)).toBe(false);
    const { rows } = await db.query('SELECT to_regclass($1) AS t', [old!.part]);
    expect(rows[0].t).toBeNull();
    // The current month's partition stays.
    const { rows: current } = await db.query("SELECT to_regclass('arbiter.decision_log_' || to_char(now(), 'YYYY_MM')) AS t");
    expect(current[0].t).not.toBeNull();
  });
});

