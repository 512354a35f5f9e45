import type { Server } from 'node:http';
import { Kafka, logLevel, Partitioners, type Consumer, type EachBatchPayload, type Producer } from 'kafkajs';
import type { ArbiterConfig } from '../config/index.ts';
import { Serde } from '../contract/serde.ts';
import { topicNames } from '../contract/topics.ts';
import { AuditStore } from '../audit/index.ts';
import { createPool, type Pool } from '../db/index.ts';
import { HttpExecutor, type Executor } from '../executor/index.ts';
import { LockStore } from '../locks/index.ts';
import { createLogger, type Logger } from '../logging/index.ts';
import { createMetrics, startMetricsServer, type Metrics } from '../metrics/index.ts';
import { compilePolicy, compileScopeRules, DEFAULT_SCOPE_RULES } from '../routing/index.ts';
import type { PipelineContext } from './context.ts';
import { takeBatch, type IntakeContext } from './intake.ts';
import { OutcomePublisher } from './outcome-publisher.ts';
import { PartitionState } from './partition-state.ts';
import { runPending } from './pipeline.ts';
import { recoverPartition } from './recovery.ts';
import { ScopeQueue } from './scope-queue.ts';
import { ensureTopics } from './topics.ts';

export type WorkerState = 'starting' | 'running' | 'draining' | 'stopped' | 'failed';

export interface WorkerOptions {
  executor?: Executor;
  logger?: Logger;
  /** Serve /metrics, /healthz, /readyz (default: when worker.metricsPort > 0). */
  serveMetrics?: boolean;
}

/** Records per intake transaction: small enough to heartbeat between, large enough to amortise round trips. */
const INTAKE_CHUNK = 1_000;

/**
 * A worker: one member of the consumer group on the requests topic. It owns the partitions Kafka
 * gives it, decides their records in order, and runs each scope's executions one at a time.
 * Lifecycle: starting → running → draining → stopped (or failed).
 */
export class Worker {
  state: WorkerState = 'starting';
  readonly metrics: Metrics;
  private readonly log: Logger;
  private readonly pool: Pool;
  private readonly kafka: Kafka;
  private readonly producer: Producer;
  private readonly consumer: Consumer;
  private readonly serde: Serde;
  private readonly audit: AuditStore;
  private readonly locks: LockStore;
  private readonly topics: ReturnType<typeof topicNames>;
  private readonly partitions = new Map<number, Promise<PartitionState>>();
  private readonly paused = new Set<number>();
  private intake!: IntakeContext;
  private reaper: NodeJS.Timeout | undefined;
  private metricsServer: Server | undefined;
  private joined = false;

  constructor(
    readonly config: Readonly<ArbiterConfig>,
    private readonly options: WorkerOptions = {},
  ) {
    this.log = (options.logger ?? createLogger()).child({ workerId: config.worker.id });
    this.metrics = createMetrics();
    // Intake of every concurrently consumed partition plus the scope queues' locks and finalizations.
    this.pool = createPool(config.databaseUrl, Math.min(32, config.kafka.partitionsConsumedConcurrently + 8));
    this.topics = topicNames(config.kafka.topicPrefix);
    this.kafka = new Kafka({
      clientId: `${config.kafka.clientId}-${config.worker.id}`,
      brokers: [...config.kafka.brokers],
      logLevel: logLevel.WARN,
      logCreator: () => (entry) => this.log.warn({ kafkajs: entry.namespace, ...entry.log }, String(entry.log.message)),
    });
    this.producer = this.kafka.producer({
      idempotent: true,
      maxInFlightRequests: 1,
      allowAutoTopicCreation: false,
      // The Java-compatible murmur2 partitioner, named explicitly: it is what routing/partitioner.ts mirrors.
      createPartitioner: Partitioners.DefaultPartitioner,
    });
    this.consumer = this.kafka.consumer({
      groupId: config.kafka.groupId,
      sessionTimeout: config.kafka.sessionTimeoutMs,
      heartbeatInterval: config.kafka.heartbeatIntervalMs,
      maxWaitTimeInMs: 50,
      allowAutoTopicCreation: false,
    });
    this.serde = new Serde(config.schemaRegistryUrl, this.topics);
    this.audit = new AuditStore(this.pool, config.worker.id);
    this.locks = new LockStore(this.pool, {
      expired: () => this.metrics.lockExpirations.inc(),
    });
  }

  async start(): Promise<this> {
    const { config } = this;
    try {
      const admin = this.kafka.admin();
      await admin.connect();
      const requestPartitions = await ensureTopics(admin, config).finally(() => admin.disconnect());
      await this.serde.register();
      await this.producer.connect();
      const pipeline: PipelineContext = {
        config,
        workerId: config.worker.id,
        audit: this.audit,
        locks: this.locks,
        executor: this.options.executor ?? new HttpExecutor({ baseUrl: config.executor.url, timeoutMs: config.executor.timeoutMs }),
        publisher: new OutcomePublisher(this.producer, this.serde, this.audit, this.topics.outcomes, this.log),
        metrics: this.metrics,
        log: this.log,
      };
      this.intake = {
        ...pipeline,
        serde: this.serde,
        producer: this.producer,
        scopes: compileScopeRules([...config.scopeRules, ...DEFAULT_SCOPE_RULES]),
        policy: compilePolicy(config.policy),
        topics: this.topics,
        requestPartitions,
      };
      if (this.options.serveMetrics ?? config.worker.metricsPort > 0) {
        this.metricsServer = await startMetricsServer(
          this.metrics,
          { live: () => this.state !== 'failed', ready: () => this.state === 'running' && this.joined },
          config.worker.metricsPort,
          config.worker.metricsHost,
        );
      }
      this.reaper = setInterval(() => void this.reap(), config.locks.reaperIntervalMs);
      this.reaper.unref();

      this.consumer.on(this.consumer.events.GROUP_JOIN, (event) => this.onAssignment(event.payload.memberAssignment));
      this.consumer.on(this.consumer.events.CRASH, (event) => {
        if (!event.payload.restart) {
          this.state = 'failed';
          this.log.error({ err: event.payload.error }, 'consumer crashed and will not restart');
        }
      });
      await this.consumer.connect();
      await this.consumer.subscribe({ topic: this.topics.requests, fromBeginning: true });
      await this.consumer.run({
        eachBatchAutoResolve: false,
        autoCommit: true,
        partitionsConsumedConcurrently: config.kafka.partitionsConsumedConcurrently,
        eachBatch: (payload) => this.onBatch(payload),
      });
      this.state = 'running';
      this.log.info({ requestPartitions, group: config.kafka.groupId }, 'worker running');
      return this;
    } catch (error) {
      this.state = 'failed';
      await this.shutdownClients();
      throw error;
    }
  }

  /** Resolves once this worker has been given partitions (or the group has settled without any). */
  async waitUntilJoined(timeoutMs = 60_000): Promise<void> {
    const until = Date.now() + timeoutMs;
    while (!this.joined) {
      if (Date.now() > until) throw new Error(`worker ${this.config.worker.id} did not join the group within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /**
   * SIGTERM: stop fetching (kafkajs commits what was resolved, i.e. only what Postgres holds),
   * let running executions finish within the deadline, flush outcomes, close clients.
   */
  async stop(): Promise<void> {
    if (this.state === 'stopped' || this.state === 'draining') return;
    this.state = 'draining';
    const deadline = new Promise<void>((resolve) => setTimeout(resolve, this.config.worker.shutdownTimeoutMs).unref());
    await this.consumer.stop().catch(() => {});
    const partitions = await Promise.all([...this.partitions.values()].map((p) => p.catch(() => null)));
    await Promise.race([Promise.all(partitions.map((p) => p?.close())), deadline]);
    await this.intake?.publisher.flush().catch(() => {});
    await this.shutdownClients();
    this.state = 'stopped';
    this.log.info('worker stopped');
  }

  private async shutdownClients(): Promise<void> {
    if (this.reaper) clearInterval(this.reaper);
    await this.consumer.disconnect().catch(() => {});
    await this.producer.disconnect().catch(() => {});
    await this.pool.end().catch(() => {});
    await new Promise<void>((resolve) => (this.metricsServer ? this.metricsServer.close(() => resolve()) : resolve()));
  }

  private onAssignment(assignment: Record<string, number[]>): void {
    const owned = new Set(assignment[this.topics.requests] ?? []);
    for (const [partition, state] of this.partitions) {
      if (owned.has(partition)) continue;
      // Revoked: stop scheduling; the new owner recovers everything pending from Postgres.
      this.partitions.delete(partition);
      void state.then((s) => s.close()).catch(() => {});
      this.metrics.consumerLag.remove({ partition: String(partition) });
    }
    // Recover newly assigned partitions now, not when their next record arrives: the previous owner
    // committed its offsets, so a partition may never get another record, and the requests it left
    // open (deferred, or killed mid-action) would wait forever.
    for (const partition of owned) {
      void this.partition(partition).catch((error) => this.log.warn({ err: error, partition }, 'recovering a partition failed; retried on its next batch'));
    }
    this.joined = true;
    this.log.info({ partitions: [...owned].sort((a, b) => a - b) }, 'partitions assigned');
  }

  private partition(partition: number): Promise<PartitionState> {
    let state = this.partitions.get(partition);
    if (!state) {
      const ctx = this.intake;
      const created = new PartitionState(partition, Math.max(this.config.conflicts.windowMs, 1), (scope, part) => {
        const queue: ScopeQueue = new ScopeQueue(
          scope,
          (entry) => (part.closed ? Promise.resolve('deferred' as const) : runPending(ctx, part, entry)),
          (entry) => {
            part.settled(entry);
            this.maybeResume(part);
          },
          () => {
            if (part.queues.get(scope) === queue && queue.size === 0) part.queues.delete(scope);
          },
          this.config.deferral.recheckMs,
        );
        return queue;
      });
      state = recoverPartition(ctx, this.topics.requests, created).then((result) => {
        if (result.pending || result.republished) this.log.info({ partition, ...result }, 'recovered partition state');
        return created;
      });
      state.catch(() => this.partitions.delete(partition));
      this.partitions.set(partition, state);
    }
    return state;
  }

  private async onBatch({ batch, resolveOffset, heartbeat, isRunning, isStale }: EachBatchPayload): Promise<void> {
    const part = await this.partition(batch.partition);
    for (let i = 0; i < batch.messages.length; i += INTAKE_CHUNK) {
      if (!isRunning() || isStale() || part.closed) return;
      const chunk = batch.messages.slice(i, i + INTAKE_CHUNK);
      await takeBatch(this.intake, part, { topic: batch.topic, partition: batch.partition, messages: chunk });
      // Only now is every decision of the chunk durable: the offset may be committed.
      resolveOffset(chunk[chunk.length - 1]!.offset);
      await heartbeat();
    }
    const last = batch.messages[batch.messages.length - 1];
    if (last) this.metrics.consumerLag.set({ partition: String(batch.partition) }, Math.max(0, Number(batch.highWatermark) - Number(last.offset) - 1));
    this.metrics.pending.set([...this.partitions.values()].length ? await this.pendingTotal() : 0);
    if (part.pendingCount > this.config.worker.maxPendingPerPartition && !this.paused.has(batch.partition)) {
      this.paused.add(batch.partition);
      this.consumer.pause([{ topic: this.topics.requests, partitions: [batch.partition] }]);
    }
  }

  private maybeResume(part: PartitionState): void {
    if (this.paused.has(part.partition) && part.pendingCount < this.config.worker.maxPendingPerPartition / 2) {
      this.paused.delete(part.partition);
      this.consumer.resume([{ topic: this.topics.requests, partitions: [part.partition] }]);
    }
  }

  private async pendingTotal(): Promise<number> {
    const states = await Promise.all([...this.partitions.values()].map((p) => p.catch(() => null)));
    return states.reduce((sum, s) => sum + (s?.pendingCount ?? 0), 0);
  }

  private async reap(): Promise<void> {
    try {
      await this.locks.reapExpired();
      const now = Date.now();
      for (const p of this.partitions.values()) {
        const s = await p.catch(() => null);
        s?.coalescer.prune(now);
        s?.memory.prune(now);
      }
    } catch (error) {
      this.log.warn({ err: error }, 'lock reaper failed; will try again');
    }
  }
}
