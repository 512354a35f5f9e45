import type { Pool } from '../db/index.ts';

export interface UpkeepSettings {
  /** Monthly partitions kept ready ahead of time. */
  partitionMonthsAhead: number;
  /** Audit rows and finished working state older than this are dropped; 0 keeps everything. */
  retentionDays: number;
}

export interface UpkeepResult {
  droppedPartitions: string[];
  prunedRequests: number;
}

/**
 * Partition upkeep, run by every worker now and then (the SQL takes an advisory lock, so workers
 * never reshape partitions at once, and each step is idempotent): next months' partitions are
 * created — moving any rows that already fell into a default partition — and, with a retention
 * period, old partitions are dropped and finished working state pruned.
 */
export async function runUpkeep(pool: Pool, settings: UpkeepSettings): Promise<UpkeepResult> {
  await pool.query('SELECT arbiter.ensure_partitions($1)', [settings.partitionMonthsAhead]);
  if (settings.retentionDays <= 0) return { droppedPartitions: [], prunedRequests: 0 };
  const keep = `${settings.retentionDays} days`;
  const dropped = await pool.query('SELECT arbiter.drop_old_partitions($1::interval) AS names', [keep]);
  const duplicates = await pool.query('SELECT arbiter.drop_old_duplicates($1::interval) AS n', [keep]);
  const pruned = await pool.query('SELECT arbiter.prune_request_state($1::interval) AS n', [keep]);
  return { droppedPartitions: dropped.rows[0].names as string[], prunedRequests: Number(pruned.rows[0].n) + Number(duplicates.rows[0].n) };
}
