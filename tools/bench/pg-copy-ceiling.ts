import { randomUUID } from 'node:crypto';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { ensureDatabase } from '../../src/db/index.ts';
import { dropDatabase } from '../support/index.ts';
import { cpuBetween, cpuSnapshot, type CpuUsage } from './proc.ts';
import { progressBar } from './progress.ts';
import { stormOrder, type TargetPod } from './storm.ts';

export interface CopyCeilingOptions {
  /** A database URL on the same server; created for the pass and dropped afterwards. */
  databaseUrl: string;
  rows: number;
  pods: TargetPod[];
  agents: number;
  seed: number;
  /** Concurrent connections (one per worker process). */
  connections: number;
  /** Rows per COPY statement (one autocommitted COPY per worker chunk). */
  chunk: number;
  keep?: boolean;
}

export interface CopyCeilingResult {
  rows: number;
  chunk: number;
  connections: number;
  seconds: number;
  rowsPerSecond: number;
  cpu: CpuUsage;
}

/**
 * The narrow row a coalesced duplicate may cost (issue 12): ids, who, what, where it came from and
 * when, nothing else. A plain logged table (not UNLOGGED, not TEMPORARY: both skip the WAL a real
 * table pays for) with its primary key on the request id, as the real one will have.
 */
const NARROW_TABLE = `CREATE TABLE bench_narrow_duplicates (
  request_id          uuid        PRIMARY KEY,
  primary_request_id  uuid        NOT NULL,
  agent_id            text        NOT NULL,
  resource_arn        text        NOT NULL,
  scope               text        NOT NULL,
  action              text        NOT NULL,
  topic               text        NOT NULL,
  kafka_partition     integer     NOT NULL,
  kafka_offset        bigint      NOT NULL,
  received_at         timestamptz NOT NULL,
  latency_ms          float8      NOT NULL
)`;

/** One line of COPY text format (tab-separated; none of the storm's values holds a tab, newline or backslash). */
export function narrowRowLine(fields: {
  requestId: string;
  primaryRequestId: string;
  agentId: string;
  resourceArn: string;
  scope: string;
  action: string;
  topic: string;
  partition: number;
  offset: number;
  receivedAt: Date;
  latencyMs: number;
}): string {
  return [
    fields.requestId,
    fields.primaryRequestId,
    fields.agentId,
    fields.resourceArn,
    fields.scope,
    fields.action,
    fields.topic,
    String(fields.partition),
    String(fields.offset),
    fields.receivedAt.toISOString(),
    String(fields.latencyMs),
  ].join('\t') + '\n';
}

/**
 * PostgreSQL's own ceiling for recording duplicates as narrow rows: COPY FROM STDIN of the storm's
 * duplicates, `chunk` rows per COPY, over `connections` connections, into an indexed logged table.
 * The rows are built before the clock starts, so only the server and the wire are measured.
 */
export async function runCopyCeiling(options: CopyCeilingOptions): Promise<CopyCeilingResult> {
  await dropDatabase(options.databaseUrl);
  await ensureDatabase(options.databaseUrl);
  const order = stormOrder(options.rows, options.pods.length, options.seed);
  const primaries = options.pods.map(() => randomUUID());
  const duplicates = new Uint32Array(options.pods.length);
  const receivedAt = new Date();
  const chunks: string[] = [];
  for (let from = 0; from < options.rows; from += options.chunk) {
    let text = '';
    for (let j = from; j < Math.min(options.rows, from + options.chunk); j++) {
      const pod = options.pods[order[j]!]!;
      text += narrowRowLine({
        requestId: randomUUID(),
        primaryRequestId: primaries[order[j]!]!,
        agentId: `agent-${String(duplicates[order[j]!]!++ % options.agents).padStart(3, '0')}`,
        resourceArn: pod.arn,
        scope: pod.scope,
        action: 'restart',
        topic: 'bench.requests',
        partition: pod.partition,
        offset: j,
        receivedAt,
        latencyMs: 5,
      });
    }
    chunks.push(text);
  }

  const pool = new pg.Pool({ connectionString: options.databaseUrl, max: options.connections, application_name: 'arbiter-bench-copy' });
  try {
    await pool.query(NARROW_TABLE);
    // Open every connection before the clock starts.
    const clients = await Promise.all(Array.from({ length: options.connections }, () => pool.connect()));
    const groups = [{ name: 'bench process', pids: [process.pid] }];
    const bar = progressBar('pg COPY narrow', options.rows);
    const before = cpuSnapshot(groups);
    const started = performance.now();
    let next = 0;
    let done = 0;
    try {
      await Promise.all(
        clients.map(async (client) => {
          while (next < chunks.length) {
            const text = chunks[next++]!;
            const copy = client.query(copyFrom('COPY bench_narrow_duplicates FROM STDIN'));
            await pipeline(Readable.from([text]), copy);
            done += copy.rowCount ?? 0;
            bar.update(done);
          }
        }),
      );
    } finally {
      bar.stop();
      for (const c of clients) c.release();
    }
    const seconds = (performance.now() - started) / 1000;
    const cpu = cpuBetween(before, cpuSnapshot(groups));
    const { rows } = await pool.query('SELECT count(*)::int AS n FROM bench_narrow_duplicates');
    if (rows[0].n !== options.rows) throw new Error(`COPY ceiling: ${rows[0].n} rows in the table, ${options.rows} copied`);
    return { rows: options.rows, chunk: options.chunk, connections: options.connections, seconds, rowsPerSecond: options.rows / seconds, cpu };
  } finally {
    await pool.end();
    if (!options.keep) await dropDatabase(options.databaseUrl);
  }
}
