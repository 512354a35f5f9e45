import type { Pool } from '../db/index.ts';

/**
 * Whether the stores a worker needs answer: PostgreSQL (a `SELECT 1` every second) and Kafka
 * (the consumer heard from the group coordinator recently). `/readyz` turns 503 while either does
 * not, and 200 again when both do — so an orchestrator sees an outage without killing the worker.
 */
export class StoreHealth {
  private databaseOk = true;
  private kafkaContactAt = Date.now();
  private timer: NodeJS.Timeout | undefined;
  private checking: Promise<void> | null = null;

  constructor(
    private readonly pool: Pool,
    /** Kafka counts as unreachable after this long without a heartbeat or fetch. */
    private readonly kafkaSilenceMs: number,
    private readonly everyMs = 1_000,
  ) {}

  /** A database connection failed (the server restarted, a backend was terminated): unready until a check succeeds. */
  databaseFailed(): void {
    this.databaseOk = false;
  }

  /** The consumer heard from the broker (heartbeat, fetch, join). */
  kafkaContact(): void {
    this.kafkaContactAt = Date.now();
  }

  get ok(): boolean {
    return this.databaseOk && Date.now() - this.kafkaContactAt < this.kafkaSilenceMs;
  }

  describe(): { database: boolean; kafka: boolean } {
    return { database: this.databaseOk, kafka: Date.now() - this.kafkaContactAt < this.kafkaSilenceMs };
  }

  start(): void {
    this.timer = setTimeout(() => {
      this.checking = this.pool
        .query('SELECT 1')
        .then(
          () => void (this.databaseOk = true),
          () => void (this.databaseOk = false),
        )
        .finally(() => {
          this.checking = null;
          if (this.timer) this.start();
        });
    }, this.everyMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    await this.checking;
  }
}
