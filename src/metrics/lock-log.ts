import type { Logger } from '../logging/index.ts';
import { createPool, type Pool, type PoolClient } from '../db/index.ts';
import type { Metrics } from './metrics.ts';

/**
 * Lock acquisition failures and TTL expirations counted from the lock log itself
 * (arbiter.lock_events), so every path that takes Arbiter's locks is counted: the workers, agents
 * using the SDK's ArbiterLocks, and `arbiter lock`. Exactly one worker at a time exports these
 * counters — the one holding a PostgreSQL advisory lock — so `sum()` over the workers equals the
 * rows in the log; the others export no series for them.
 *
 * The log is append-only, partitioned by `at`, without an id column, and `at` is the writing
 * transaction's start time (now()): a row can become visible after rows with a later `at`. So the
 * exporter keeps running totals of *settled* rows — older than a horizon no open transaction can
 * still write below — and counts the tail above the horizon afresh on every refresh:
 *
 *     exported = settled (rows at < horizon, counted once, kept in memory) + tail (rows at >= horizon)
 *
 * The horizon is the older of `now() - settleMarginMs` and the start of the oldest transaction
 * open in this database (as far as pg_stat_activity shows it), never older than `maxTailMs`.
 * Arbiter's own connections end a transaction left idle after 60 s and a statement after 30 s
 * (db/pool.ts), so the 5-minute margin holds even for transactions pg_stat_activity hides.
 * Each refresh reads only the rows at or after the previous horizon. Totals never go down while a
 * worker stays the exporter, whatever retention drops; a new exporter starts from the log as it is.
 */

export type LockLogEvent = 'acquire_failed' | 'expired';
export const LOCK_LOG_EVENTS: readonly LockLogEvent[] = ['acquire_failed', 'expired'];

/** One group of lock-log rows read by a refresh: those below the new horizon and those at or above it. */
export interface LockLogCount {
  event: LockLogEvent;
  /** Type of the ARN's last `type/name` pair (null when the key is not an ARN). */
  resourceType: string | null;
  /** The agent (or, without one, the owner) that was refused (acquire_failed) or that held the lock (expired). */
  agent: string;
  settled: number;
  tail: number;
}

export interface LockLogLabels {
  resource_type: string;
  agent: string;
}

/** A total to export, with its (bounded) labels. */
export interface LockLogTotal {
  event: LockLogEvent;
  labels: LockLogLabels;
  total: number;
}

/**
 * The exporter's running totals (pure: the database is elsewhere). `bound` maps raw labels to the
 * ones exported (the metric's bounds, so unknown agents beyond the cap fold into `other`); it must
 * be stable, as the metrics' bounds are.
 */
export class LockLogLedger {
  private readonly settled = new Map<string, LockLogTotal>();
  private exported = new Map<string, LockLogTotal>();

  constructor(private readonly bound: (event: LockLogEvent, labels: LockLogLabels) => LockLogLabels) {}

  /**
   * Folds in one refresh: `rows` are the groups read at or after the previous horizon, split at
   * the new one. Returns how much each exported total grew (never negative).
   */
  apply(rows: readonly LockLogCount[]): LockLogTotal[] {
    const totals = new Map<string, LockLogTotal>();
    for (const [key, s] of this.settled) totals.set(key, { ...s });
    for (const row of rows) {
      const labels = this.bound(row.event, { resource_type: row.resourceType ?? 'other', agent: row.agent });
      const key = `${row.event}\u0000${labels.resource_type}\u0000${labels.agent}`;
      if (row.settled > 0) {
        const s = this.settled.get(key) ?? { event: row.event, labels, total: 0 };
        s.total += row.settled;
        this.settled.set(key, s);
      }
      const t = totals.get(key) ?? { event: row.event, labels, total: 0 };
      t.total += row.settled + row.tail;
      totals.set(key, t);
    }
    const growth: LockLogTotal[] = [];
    for (const [key, t] of totals) {
      const before = this.exported.get(key)?.total ?? 0;
      // A tail row can only vanish if its partition was dropped by retention: keep what was exported.
      if (t.total > before) growth.push({ ...t, total: t.total - before });
      else t.total = before;
    }
    for (const [key, e] of this.exported) if (!totals.has(key)) totals.set(key, e);
    this.exported = totals;
    return growth;
  }

  /** What is exported now, by event and labels. */
  totals(): LockLogTotal[] {
    return [...this.exported.values()].map((t) => ({ ...t, labels: { ...t.labels } }));
  }
}

/** The advisory lock the exporting worker holds (two-key form, apart from the single-key locks migrations and upkeep take). */
export const EXPORTER_LOCK_KEYS = ['arbiter.metrics', 'lock_log'] as const;

export interface LockLogExporterOptions {
  databaseUrl: string;
  intervalMs: number;
  metrics: Metrics;
  log: Logger;
  /** Rows younger than this stay in the recounted tail (default 5 minutes). */
  settleMarginMs?: number;
  /** The tail never reaches further back than this, however old an open transaction is (default 1 hour). */
  maxTailMs?: number;
}

// Never before the previous horizon ($3): rows below it are settled already.
const HORIZON_SQL = `
  SELECT greatest($3::timestamptz,
                  now() - make_interval(secs => $2::double precision / 1000),
                  least(now() - make_interval(secs => $1::double precision / 1000),
                        (SELECT min(xact_start) FROM pg_stat_activity
                          WHERE datname = current_database() AND backend_type = 'client backend'
                            AND xact_start IS NOT NULL AND pid <> pg_backend_pid())))::text AS horizon`;

// Statement apart from HORIZON_SQL, so its snapshot is taken after the open transactions were read.
const COUNT_SQL = `
  SELECT event,
         substring(resource_arn from '([^:/]+)/[^:/]+$') AS resource_type,
         coalesce(agent_id, owner) AS agent,
         count(*) FILTER (WHERE at < $2::timestamptz)::int AS settled,
         count(*) FILTER (WHERE at >= $2::timestamptz)::int AS tail
    FROM arbiter.lock_events
   WHERE event IN ('acquire_failed', 'expired')
     AND ($1::timestamptz IS NULL OR at >= $1::timestamptz)
   GROUP BY 1, 2, 3`;

/**
 * Competes for the exporter's advisory lock every `intervalMs` and, while holding it, brings the
 * lock-log counters up to date from the log. Runs in each worker that serves /metrics.
 */
export class LockLogExporter {
  private readonly pool: Pool;
  private client: PoolClient | null = null;
  private ledger: LockLogLedger | null = null;
  /** The horizon of the last refresh (as PostgreSQL wrote it): the next refresh reads from here. */
  private horizon: string | null = null;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | null = null;
  private stopped = false;
  private failures = 0;

  constructor(private readonly options: LockLogExporterOptions) {
    // One connection of its own: the advisory lock lives as long as this session.
    this.pool = createPool(options.databaseUrl, { max: 1, onError: () => undefined });
  }

  /** Whether this process exports the lock-log counters now. */
  get exporting(): boolean {
    return this.ledger !== null;
  }

  start(): void {
    this.schedule(0);
  }

  /** Stops refreshing and gives up the lock (another worker takes over within its interval). */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.running;
    this.resign(null);
    await this.pool.end();
  }

  /** One step: become the exporter if nobody is, then refresh. Exposed for tests. */
  async tick(): Promise<void> {
    try {
      this.client ??= await this.pool.connect();
      if (!this.ledger) {
        const { rows } = await this.client.query('SELECT pg_try_advisory_lock(hashtext($1), hashtext($2)) AS ok', [...EXPORTER_LOCK_KEYS]);
        if (!rows[0].ok) return;
        this.ledger = new LockLogLedger((event, labels) => this.boundLabels(event, labels));
        this.horizon = null;
        this.options.log.info('this worker exports the lock-log metrics (acquire failures, TTL expirations)');
      }
      await this.refresh(this.client, this.ledger);
      this.options.metrics.lockLogExporter.set(1);
      this.failures = 0;
    } catch (error) {
      if (this.failures++ % 30 === 0) this.options.log.warn({ err: error }, 'lock-log metrics: refresh failed; will try again');
      // The session may be gone, and its advisory lock with it: stop exporting, reconnect next time.
      this.resign(error instanceof Error ? error : new Error(String(error)));
    }
  }

  private async refresh(client: PoolClient, ledger: LockLogLedger): Promise<void> {
    const { settleMarginMs = 300_000, maxTailMs = 3_600_000 } = this.options;
    const { rows: h } = await client.query(HORIZON_SQL, [settleMarginMs, Math.max(maxTailMs, settleMarginMs), this.horizon]);
    const horizon: string = h[0].horizon;
    const { rows } = await client.query(COUNT_SQL, [this.horizon, horizon]);
    const growth = ledger.apply(
      rows.map((r) => ({ event: r.event, resourceType: r.resource_type, agent: r.agent, settled: r.settled, tail: r.tail })),
    );
    this.horizon = horizon;
    const { lockAcquireFailures, lockExpirations } = this.options.metrics;
    for (const g of growth) (g.event === 'acquire_failed' ? lockAcquireFailures : lockExpirations).inc({ ...g.labels }, g.total);
  }

  private boundLabels(event: LockLogEvent, labels: LockLogLabels): LockLogLabels {
    const metric = event === 'acquire_failed' ? 'arbiter_lock_acquire_failures_total' : 'arbiter_lock_ttl_expirations_total';
    const bounds = this.options.metrics.labelBounds.get(metric)!;
    return { resource_type: bounds.resource_type!(labels.resource_type), agent: bounds.agent!(labels.agent) };
  }

  /** Stops exporting: the series disappear from /metrics (another worker exports them now). */
  private resign(error: Error | null): void {
    const { lockAcquireFailures, lockExpirations, lockLogExporter } = this.options.metrics;
    if (this.ledger) this.options.log.info('this worker no longer exports the lock-log metrics');
    this.ledger = null;
    this.horizon = null;
    lockAcquireFailures.reset();
    lockExpirations.reset();
    lockLogExporter.set(0);
    // Releasing the connection ends the session (and the advisory lock, if it is still held).
    this.client?.release(error ?? true);
    this.client = null;
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.running = this.tick().finally(() => {
        this.running = null;
        this.schedule(this.options.intervalMs);
      });
    }, delayMs);
    this.timer.unref();
  }
}
