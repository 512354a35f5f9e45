import type pg from 'pg';

/** One row of `arbiter.dead_letters`, as `arbiter dead-letters list` shows it. */
export interface DeadLetter {
  id: string;
  topic: string;
  partition: number;
  offset: string;
  key: Buffer | null;
  value: Buffer | null;
  /** The record's own headers (values as bytes), never the error headers added on the dead-letter topic. */
  headers: Record<string, Buffer>;
  errorCode: string;
  error: string;
  workerId: string | null;
  recordedAt: Date;
  replayedAt: Date | null;
  replayCount: number;
}

/** Which dead letters: by id, or recorded in a time range (optionally only those never replayed). */
export interface DeadLetterSelection {
  topic: string;
  ids?: string[];
  since?: Date;
  until?: Date;
  /** Leave out those replayed already (the default for a replay by time range). */
  notReplayed?: boolean;
  limit?: number;
}

interface DeadLetterDbRow {
  id: string;
  topic: string;
  kafka_partition: number;
  kafka_offset: string;
  record_key: Buffer | null;
  record_value: Buffer | null;
  headers: Record<string, string>;
  error_code: string;
  error: string;
  worker_id: string | null;
  recorded_at: Date;
  replayed_at: Date | null;
  replay_count: number;
}

export async function listDeadLetters(db: pg.Pool | pg.PoolClient, selection: DeadLetterSelection): Promise<DeadLetter[]> {
  const { rows } = await db.query<DeadLetterDbRow>(
    `SELECT id::text, topic, kafka_partition, kafka_offset::text, record_key, record_value, headers, error_code, error,
            worker_id, recorded_at, replayed_at, replay_count
       FROM arbiter.dead_letters
      WHERE topic = $1
        AND ($2::bigint[] IS NULL OR id = ANY($2::bigint[]))
        AND ($3::timestamptz IS NULL OR recorded_at >= $3)
        AND ($4::timestamptz IS NULL OR recorded_at < $4)
        AND (NOT $5 OR replayed_at IS NULL)
      ORDER BY recorded_at, id
      LIMIT $6`,
    [
      selection.topic,
      selection.ids ?? null,
      selection.since ?? null,
      selection.until ?? null,
      selection.notReplayed ?? false,
      selection.limit ?? 10_000,
    ],
  );
  return rows.map(fromRow);
}

/** Marks dead letters as re-published (after the send was acknowledged). */
export async function markReplayed(db: pg.Pool | pg.PoolClient, ids: string[]): Promise<void> {
  if (ids.length === 0) return;
  await db.query(
    `UPDATE arbiter.dead_letters SET replayed_at = now(), replay_count = replay_count + 1 WHERE id = ANY($1::bigint[])`,
    [ids],
  );
}

function fromRow(row: DeadLetterDbRow): DeadLetter {
  // The worker stores each original header value base64-encoded (jsonb holds no bytes).
  const headers = Object.fromEntries(Object.entries(row.headers).map(([name, value]) => [name, Buffer.from(value, 'base64')]));
  return {
    id: row.id,
    topic: row.topic,
    partition: row.kafka_partition,
    offset: row.kafka_offset,
    key: row.record_key,
    value: row.record_value,
    headers,
    errorCode: row.error_code,
    error: row.error,
    workerId: row.worker_id,
    recordedAt: row.recorded_at,
    replayedAt: row.replayed_at,
    replayCount: row.replay_count,
  };
}
