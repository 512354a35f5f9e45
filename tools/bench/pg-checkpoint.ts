import type pg from 'pg';
import { note } from './progress.ts';

/**
 * Writes PostgreSQL's dirty pages before an arm (or a measured pass): otherwise the checkpointer
 * writes the previous one's during this one, counted as this one's PostgreSQL CPU, and the
 * checkpoint an arm's own WAL starts falls at a different point of each arm. CHECKPOINT needs a
 * superuser or pg_checkpoint; without it the measurement runs as before, and says so.
 */
export async function checkpoint(db: Pick<pg.Pool, 'query'>): Promise<void> {
  try {
    await db.query('CHECKPOINT');
  } catch (error) {
    note(`no CHECKPOINT before measuring (${(error as Error).message}): it may pay for what ran before it`);
  }
}
