import type { Server } from 'node:http';
import { Kafka, logLevel, type Consumer, type EachBatchPayload, type Producer } from 'kafkajs';
import type { ArbiterConfig } from '../config/index.ts';
import { kafkaSecurityOptions, keyedPartitioner } from '../contract/kafka-client.ts';
import { Serde } from '../contract/serde.ts';
import { topicNames } from '../contract/topics.ts';
import { AuditStore, runUpkeep, secretParamsOf } from '../audit/index.ts';
import { createPool, type Pool } from '../db/index.ts';
import { HttpExecutor, httpExecutorOptions, type Executor } from '../executor/index.ts';
import { LockStore } from '../locks/index.ts';
import { createLogger, type Logger } from '../logging/index.ts';
import { createMetrics, LagMonitor, LockLogExporter, startMetricsServer, type HeldRequests, type Metrics } from '../metrics/index.ts';
import { systemClock } from './clock.ts';
import type { PipelineContext } from './context.ts';
import { runHead } from './head-runner.ts';
import { takeChunk, type IntakeContext } from './intake.ts';
import { OutcomePublisher } from './outcome-publisher.ts';
import { Partition, windowOf } from './partition.ts';
import { recoverPartition, sweepOutbox } from './recovery.ts';
import { Detector, DetectionStore } from '../detect/index.ts';
import { PlanRelay, PlanStore } from '../plans/index.ts';
import { ensureTopics } from './topics.ts';
import { withDeadline } from './deadline.ts';
import { backoffMs } from '../contract/backoff.ts';
import { isTransient, untilAvailable } from './transient.ts';
import { StoreHealth } from './store-health.ts';
import { OffsetCommitter } from './offset-committer.ts';
import { PartitionPipeline, type PipelineSteps } from './partition-pipeline.ts';

export type WorkerState = 'starting' | 'running' | 'draining' | 'stopped' | 'failed';

export interface WorkerOptions {
  executor?: Executor;
  logger?: Logger;
  /** Serve /metrics, /healthz, /readyz (default: when worker.metricsPort > 0). */
  serveMetrics?: boolean;
}


/**
 * A worker: one member of the consumer group on the requests topic. It owns the partitions Kafka
 * gives it, decides their records in order, and runs each scope's executions one at a time.
 * Lifecycle: starting → running → draining → stopped (or failed).
 */
export class Worker {
  private currentState: WorkerState = 'starting';
  readonly metrics: Metrics;
  private readonly log: Logger;
  private readonly pool: Pool;
  /** The arrival writes' own connections (two combined writes in flight, one probe). */
  private readonly intakePool: Pool;
  private readonly kafka: Kafka;
  private readonly producer: Producer;
  private readonly consumer: Consumer;
  private readonly serde: Serde;
  private readonly audit: AuditStore;
  private readonly plans: PlanStore;
  /** The plan relay, when this worker runs one (plans.relay). */
  private relay: PlanRelay | undefined;
  /** The inconsistency detector, when this worker runs one (detection.enabled). */
  private detector: Detector | undefined;
  private readonly locks: LockStore;
  private readonly topics: ReturnType<typeof topicNames>;
  private readonly partitions = new Map<number, Promise<Partition>>();
  private readonly paused = new Set<number>();
  /** Aborted when shutdown stops waiting for running executions: reaches the executor and observe. */
  private readonly shutdown = new AbortController();
  private intake!: IntakeContext;
  private requestPartitions = 0;
  private reaper: NodeJS.Timeout | undefined;
  /** The reaper run in progress, so shutdown can wait for it and runs never overlap. */
  private reaping: Promise<void> | null = null;
  private upkeep: NodeJS.Timeout | undefined;
  private lastSweepAt = Date.now();
  private upkeeping: Promise<void> | null = null;
  private metricsServer: Server | undefined;
  /** Consumer lag from the broker every worker.lagRefreshMs, and the lock-log counters (one worker at a time): with /metrics only. */
  private lag: LagMonitor | undefined;
  private lockLog: LockLogExporter | undefined;
  private joined = false;
  private stopping: Promise<void> | null = null;
  private readonly health: StoreHealth;
  /** Commits offsets once their chunks' answers are delivered, apart from the fetch loop. */
  private committer!: OffsetCommitter;
  /** eachBatch calls running now: a drain waits for them before its last commit. */
  private batchesRunning = 0;
  /** Each owned partition's intake, apart from the fetch loop. */
  private readonly pipelines = new Map<number, { part: Partition; pipeline: PartitionPipeline }>();
  /** Partitions fetching again from a failed chunk (the seek's offset). */
  private readonly refetchFrom = new Map<number, bigint>();

  constructor(
    readonly config: Readonly<ArbiterConfig>,
    private readonly options: WorkerOptions = {},
  ) {
    this.log = (options.logger ?? createLogger()).child({ workerId: config.worker.id });
    this.metrics = createMetrics(() => this.held());
    // Intake of every concurrently consumed partition plus the scope queues' locks and finalizations.
    this.pool = createPool(config.databaseUrl, {
      max: Math.min(32, config.kafka.partitionsConsumedConcurrently + 8),
      // A storm runs hundreds of scopes' executions at once on these connections: a statement may
      // queue for one a while (FIFO) rather than fail; past this it is DATABASE_BUSY and retried.
      connectTimeoutMs: 15_000,
      prepareStatements: true,
      onError: (error) => {
        this.health?.databaseFailed();
        this.log.warn({ err: error }, 'a database connection failed; the pool replaces it');
      },
    });
    this.topics = topicNames(config.kafka.topicPrefix);
    this.kafka = new Kafka({
      clientId: `${config.kafka.clientId}-${config.worker.id}`,
      brokers: [...config.kafka.brokers],
      logLevel: logLevel.WARN,
      logCreator: () => (entry) => this.log.warn({ kafkajs: entry.namespace, ...entry.log }, String(entry.log.message)),
      // kafkajs gives up on a group coordinator after ~10 s by default and then crashes the consumer
      // for good; a broker restart takes longer than that. Ride it out (about 2.5 minutes in all).
      retry: { initialRetryTime: 300, maxRetryTime: 5_000, retries: 30 },
      ...kafkaSecurityOptions(config),
    });
    this.producer = this.kafka.producer({
      // Not kafkajs' idempotent mode: after a produce that timed out on a frozen broker it rolls its
      // sequence back although the broker writes that batch later, and the next batch can then be
      // acknowledged as a duplicate without being written — an outcome flagged published that
      // never was. Outcomes are idempotent by requestId for agents, so a repeat is harmless; a loss
      // is not.
      idempotent: false,
      maxInFlightRequests: 1,
      allowAutoTopicCreation: false,
      // The Java-compatible murmur2 partitioner, named explicitly: it is what routing/partitioner.ts mirrors.
      createPartitioner: keyedPartitioner,
    });
    this.consumer = this.kafka.consumer({
      groupId: config.kafka.groupId,
      sessionTimeout: config.kafka.sessionTimeoutMs,
      heartbeatInterval: config.kafka.heartbeatIntervalMs,
      maxWaitTimeInMs: config.kafka.fetchMaxWaitMs,
      allowAutoTopicCreation: false,
      maxBytesPerPartition: config.kafka.fetchMaxBytesPerPartition,
      maxBytes: config.kafka.fetchMaxBytes,
    });
    // One try per registration: start-up's wait loop retries, and logs what it waits for.
    this.serde = new Serde(config.schemaRegistryUrl, this.topics, { registerWithinMs: 0 });
    this.health = new StoreHealth(this.pool, Math.max(10_000, config.kafka.sessionTimeoutMs));
    this.intakePool = createPool(config.databaseUrl, {
      max: 3,
      onError: (error) => {
        this.health?.databaseFailed();
        this.log.warn({ err: error }, 'a database connection failed; the pool replaces it');
      },
    });
    this.audit = new AuditStore(this.pool, config.worker.id, secretParamsOf(config.actions), this.intakePool);
    this.plans = new PlanStore(this.pool, (events) => events.forEach((e) => this.metrics.planEvents.inc({ type: e.type })));
    // Acquire failures and expirations are counted from the lock log (LockLogExporter), every path alike.
    this.locks = new LockStore(this.pool);
  }

  /** starting → running → draining → stopped (or failed). Read-only from outside. */
  get state(): WorkerState {
    return this.currentState;
  }

  async start(): Promise<this> {
    const { config } = this;
    const step = <T>(what: string, work: Promise<T>) => withDeadline(work, config.worker.startStepTimeoutMs, `start-up: ${what}`);
    try {
      const admin = this.kafka.admin();
      await step('connecting to Kafka', admin.connect());
      const requestPartitions = await step('creating topics', ensureTopics(admin, config)).finally(() => admin.disconnect());
      this.requestPartitions = requestPartitions;
      // A registry that is briefly away at start-up (restarting with the stack) is waited for.
      await step(
        'registering schemas',
        this.untilAvailable('the schema registry', async () => {
          await this.serde.register();
          // The relay's own subjects too, here where a slow registry is waited for: by default every worker runs one.
          if (config.plans.relay) await this.serde.registerPlans();
        }),
      );
      await step('connecting the producer', this.producer.connect());
      const pipeline: PipelineContext = {
        config,
        workerId: config.worker.id,
        audit: this.audit,
        plans: this.plans,
        locks: this.locks,
        executor: this.options.executor ?? new HttpExecutor(httpExecutorOptions(config.executor)),
        publisher: new OutcomePublisher(this.producer, this.serde, this.audit, this.topics.outcomes, this.log, config.compiled.arbiterSigningKey),
        metrics: this.metrics,
        log: this.log,
        shutdown: this.shutdown.signal,
      };
      this.intake = { ...pipeline, serde: this.serde, producer: this.producer, topics: this.topics };
      this.committer = new OffsetCommitter(
        this.topics.requests,
        (offsets) => this.consumer.commitOffsets(offsets),
        (error) => this.log.warn({ err: error }, 'committing offsets failed; the next commit carries them (or the next owner answers those records again)'),
      );
      this.committer.start();
      if (this.options.serveMetrics ?? config.worker.metricsPort > 0) {
        this.metricsServer = await startMetricsServer(
          this.metrics,
          { live: () => this.currentState !== 'failed', ready: () => this.currentState === 'running' && this.joined && this.health.ok },
          config.worker.metricsPort,
          config.worker.metricsHost,
        );
        this.lockLog = new LockLogExporter({ databaseUrl: config.databaseUrl, intervalMs: config.worker.lockLogMetricsMs, metrics: this.metrics, log: this.log });
        this.lockLog.start();
        this.lag = new LagMonitor({
          admin: this.kafka.admin(),
          groupId: config.kafka.groupId,
          topic: this.topics.requests,
          intervalMs: config.worker.lagRefreshMs,
          metrics: this.metrics,
          log: this.log,
        });
        this.lag.start();
      }
      this.scheduleReap();
      this.scheduleUpkeep(0);
      if (config.plans.relay) {
        this.relay = new PlanRelay({ ...pipeline, kafka: this.kafka, producer: this.producer, serde: this.serde, topics: this.topics });
        await step('starting the plan relay', this.relay.start());
      }
      if (config.detection.enabled) {
        const store = new DetectionStore(this.pool);
        this.detector = new Detector({ ...pipeline, kafka: this.kafka, producer: this.producer, serde: this.serde, store, pool: this.pool, topics: this.topics });
        await step('starting the inconsistency detector', this.detector.start());
      }

      this.consumer.on(this.consumer.events.GROUP_JOIN, (event) => {
        this.health.kafkaContact();
        this.onAssignment(event.payload.memberAssignment);
      });
      for (const contact of [this.consumer.events.HEARTBEAT, this.consumer.events.FETCH_START]) this.consumer.on(contact, () => this.health.kafkaContact());
      this.health.start();
      this.consumer.on(this.consumer.events.CRASH, (event) => {
        if (!event.payload.restart) {
          this.currentState = 'failed';
          this.log.error({ err: event.payload.error }, 'consumer crashed and will not restart');
        }
      });
      await step('connecting the consumer', this.consumer.connect());
      await step('subscribing', this.consumer.subscribe({ topic: this.topics.requests, fromBeginning: true }));
      await this.consumer.run({
        eachBatchAutoResolve: false,
        // Offsets are committed by the OffsetCommitter once delivered, not after each batch.
        autoCommit: false,
        partitionsConsumedConcurrently: config.kafka.partitionsConsumedConcurrently,
        eachBatch: (payload) => this.onBatch(payload),
      });
      this.currentState = 'running';
      this.log.info({ requestPartitions, group: config.kafka.groupId }, 'worker running');
      return this;
    } catch (error) {
      this.currentState = 'failed';
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
   * SIGTERM: stop fetching (kafkajs commits what was resolved, i.e. only what Postgres holds), let
   * running executions finish for up to `worker.shutdownTimeoutMs`, then abort them (the executor
   * call sees the signal; the request stays open in Postgres for the next owner), flush outcomes,
   * close the clients. Every step has a deadline, so stop() always ends.
   */
  stop(): Promise<void> {
    this.stopping ??= this.drain();
    return this.stopping;
  }

  private async drain(): Promise<void> {
    if (this.currentState === 'stopped') return;
    this.currentState = 'draining';
    const { shutdownTimeoutMs } = this.config.worker;
    const step = (what: string, work: Promise<unknown>) => this.stopStep(what, work);

    // No new batches; the running ones end; what they delivered is committed while this worker is
    // still in the group (stop() leaves it). A delivery still pending at a deadline is answered
    // again by the next owner.
    try {
      this.consumer.pause([{ topic: this.topics.requests }]);
    } catch {
      // Not consuming (start-up failed): nothing runs, nothing to commit.
    }
    await step('finishing the running batches', this.untilNoBatchRuns());
    await step('deciding what was fetched', Promise.all([...this.pipelines.values()].map((p) => p.pipeline.idle())));
    await step('committing delivered offsets', this.committer?.flush() ?? Promise.resolve());
    await step('stopping the consumer', this.consumer.stop());
    const partitions = await this.partitionStates();
    const closing = Promise.all(partitions.map((p) => p.close()));
    const finished = await withDeadline(closing, shutdownTimeoutMs, 'executions').then(
      () => true,
      () => false,
    );
    if (!finished) {
      this.log.warn({ shutdownTimeoutMs }, 'executions still running at the shutdown deadline: aborting them for the next owner');
      this.shutdown.abort(new Error('worker shutting down'));
      await step('aborting executions', closing);
    }
    await step('flushing outcomes', this.intake?.publisher.flush() ?? Promise.resolve());
    await this.shutdownClients();
    this.currentState = 'stopped';
    this.log.info('worker stopped');
  }

  /** One shutdown step: given worker.stopStepTimeoutMs, then logged and left behind, so a drain always ends. */
  private stopStep(what: string, work: Promise<unknown>): Promise<unknown> {
    return withDeadline(work, this.config.worker.stopStepTimeoutMs, what).catch((error: unknown) =>
      this.log.warn({ err: error }, `shutdown: ${what} did not finish`),
    );
  }

  private async shutdownClients(): Promise<void> {
    const step = (what: string, work: Promise<unknown>) => this.stopStep(what, work);
    this.committer?.stop();
    if (this.reaper) clearTimeout(this.reaper);
    this.reaper = undefined;
    await step('waiting for the lock reaper', this.reaping ?? Promise.resolve());
    if (this.upkeep) clearTimeout(this.upkeep);
    this.upkeep = undefined;
    await step('waiting for partition upkeep', this.upkeeping ?? Promise.resolve());
    await step('stopping the metrics refreshers', Promise.all([this.lag?.stop(), this.lockLog?.stop()]));
    await step('stopping the plan relay', this.relay?.stop() ?? Promise.resolve());
    await step('stopping the inconsistency detector', this.detector?.stop() ?? Promise.resolve());
    await step('stopping the health check', this.health.stop());
    await step('disconnecting the consumer', this.consumer.disconnect());
    await step('disconnecting the producer', this.producer.disconnect());
    await step('closing the database pool', Promise.all([this.pool.end(), this.intakePool.end()]));
    const server = this.metricsServer;
    if (server) await step('closing the metrics server', new Promise<void>((resolve) => server.close(() => resolve())));
  }

  private onAssignment(assignment: Record<string, number[]>): void {
    const owned = new Set(assignment[this.topics.requests] ?? []);
    for (const [partition, state] of this.partitions) {
      if (owned.has(partition)) continue;
      // Revoked: stop scheduling; the new owner recovers everything pending from Postgres.
      this.partitions.delete(partition);
      this.committer.forget(partition);
      this.pipelines.delete(partition);
      this.refetchFrom.delete(partition);
      void state.then((s) => s.revoke()).catch(() => {});
    }
    this.lag?.assigned(owned);
    // Recover newly assigned partitions now, not when their next record arrives: the previous owner
    // committed its offsets, so a partition may never get another record, and the requests it left
    // open (deferred, or killed mid-action) would wait forever.
    for (const partition of owned) {
      void this.partition(partition).catch((error) => this.log.warn({ err: error, partition }, 'recovering a partition failed; retried on its next batch'));
    }
    this.joined = true;
    this.log.info({ partitions: [...owned].sort((a, b) => a - b) }, 'partitions assigned');
  }

  private partition(partition: number): Promise<Partition> {
    let state = this.partitions.get(partition);
    if (!state) {
      const ctx = this.intake;
      const created = new Partition({
        partition,
        partitions: this.requestPartitions,
        windowMs: windowOf(this.config.actions),
        historyMs: this.config.conflicts.windowMs,
        recheckMs: this.config.deferral.recheckMs,
        clock: systemClock,
        runHead: (part, entry) => runHead(ctx, part, entry),
        onSettled: (part) => this.maybeResume(part),
        maxWaitingFollowers: this.config.worker.maxWaitingFollowersPerPartition,
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

  private async onBatch(payload: EachBatchPayload): Promise<void> {
    this.batchesRunning++;
    try {
      await this.takeBatch(payload);
    } finally {
      this.batchesRunning--;
    }
  }

  private async untilNoBatchRuns(): Promise<void> {
    while (this.batchesRunning > 0) await new Promise((resolve) => setTimeout(resolve, 20));
  }

  /**
   * Hands a batch to its partition's pipeline and returns, so kafkajs fetches again while the
   * chunks are decided and written (PartitionPipeline). The offset is resolved at once — it only
   * moves the fetch position; commits wait until a chunk is durable and answered (OffsetCommitter).
   */
  private async takeBatch(payload: EachBatchPayload): Promise<void> {
    const { batch, resolveOffset, heartbeat } = payload;
    const part = await this.whileTransient(() => this.partition(batch.partition), payload);
    let messages = batch.messages;
    const from = this.refetchFrom.get(batch.partition);
    if (from !== undefined) {
      // After a failed chunk only its records, fetched again from the seek, are taken; a batch
      // fetched before the seek took effect is left alone.
      if (!messages.length || BigInt(messages[0]!.offset) > from) return;
      messages = messages.filter((m) => BigInt(m.offset) >= from);
      this.refetchFrom.delete(batch.partition);
    }
    if (!messages.length || part.closed) return;
    // Time in Kafka and on the way, apart from the worker's own (arbiter_decision_latency_seconds).
    const fetchedAt = Date.now();
    for (const m of messages) this.metrics.fetchDelay.observe(Math.max(0, fetchedAt - Number(m.timestamp)) / 1000);
    let current = this.pipelines.get(batch.partition);
    if (!current || current.part !== part || current.pipeline.broken) {
      current = { part, pipeline: new PartitionPipeline(this.pipelineSteps(part, batch.topic, heartbeat)) };
      this.pipelines.set(batch.partition, current);
    }
    resolveOffset(messages[messages.length - 1]!.offset);
    await current.pipeline.push(messages, batch.highWatermark);
    await heartbeat();
  }

  private pipelineSteps(part: Partition, topic: string, heartbeat: () => Promise<void>): PipelineSteps {
    const partition = part.partition;
    const live = { heartbeat, isRunning: () => this.currentState === 'running', isStale: () => part.closed };
    return {
      take: (messages) => this.whileTransient(() => takeChunk(this.intake, part, { topic, partition, messages }), live),
      durable: async (lastOffset, delivered, highWatermark) => {
        await this.committer.add(partition, lastOffset, delivered);
        this.lag?.batchProcessed(partition, highWatermark, lastOffset);
        if (part.pendingCount > this.config.worker.maxPendingPerPartition && !this.paused.has(partition)) {
          this.paused.add(partition);
          this.consumer.pause([{ topic: this.topics.requests, partitions: [partition] }]);
        }
      },
      failed: (firstOffset, error) => {
        if (part.closed || this.currentState !== 'running') return; // the next owner (or the next start) takes it from the committed offset
        this.log.error({ err: error, partition, offset: firstOffset }, 'deciding a chunk failed; its records are fetched again');
        this.refetchFrom.set(partition, BigInt(firstOffset));
        const seek = setTimeout(() => {
          try {
            this.consumer.seek({ topic, partition, offset: firstOffset });
          } catch (seekError) {
            this.log.warn({ err: seekError, partition }, 'seeking back to a failed chunk failed; the next owner takes it from the committed offset');
          }
        }, 1_000);
        seek.unref();
      },
      closed: () => part.closed,
    };
  }

  /** Retries `work` while its errors are transient, until it succeeds or the worker stops. */
  private untilAvailable<T>(what: string, work: () => Promise<T>): Promise<T> {
    // Given up on (the start-up step's deadline passed, or the worker is stopping): stop trying.
    return untilAvailable(what, work, this.log, () => this.stopping !== null || this.currentState === 'failed');
  }

  /**
   * Retries `work` while its errors are transient (database, registry or broker unreachable),
   * heartbeating between tries: an outage holds the partition where it is instead of restarting
   * the consumer. Anything else, or a revoked partition, is thrown to kafkajs as before.
   */
  private async whileTransient<T>(work: () => Promise<T>, payload: Pick<EachBatchPayload, 'heartbeat' | 'isRunning' | 'isStale'>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        const result = await work();
        if (attempt > 1) this.log.info({ attempts: attempt }, 'intake recovered');
        return result;
      } catch (error) {
        if (!isTransient(error) || !payload.isRunning() || payload.isStale() || this.currentState !== 'running') throw error;
        if (attempt === 1 || attempt % 10 === 0) this.log.warn({ err: error, attempt }, 'intake waits for an unreachable store');
        await new Promise((resolve) => setTimeout(resolve, backoffMs(attempt)));
        await payload.heartbeat().catch(() => undefined);
      }
    }
  }

  private maybeResume(part: Partition): void {
    if (this.currentState !== 'running') return;
    if (this.paused.has(part.partition) && part.pendingCount < this.config.worker.maxPendingPerPartition / 2) {
      this.paused.delete(part.partition);
      this.consumer.resume([{ topic: this.topics.requests, partitions: [part.partition] }]);
    }
  }

  /** The requests and duplicates this worker holds, over every partition it owns (for /metrics). */
  private async held(): Promise<HeldRequests> {
    const states = await this.partitionStates();
    return {
      pending: states.reduce((sum, s) => sum + s.pendingCount, 0),
      waitingFollowers: states.reduce((sum, s) => sum + s.followersInMemory, 0),
    };
  }

  /** The partitions this worker owns whose set-up succeeded (a failed one is being handed back). */
  private async partitionStates(): Promise<Partition[]> {
    const states = await Promise.all([...this.partitions.values()].map((p) => p.catch(() => null)));
    return states.filter((s) => s !== null);
  }

  /** Partition upkeep now and every audit.upkeepIntervalMs; a failure is logged and retried next time. */
  private scheduleUpkeep(delayMs: number): void {
    this.upkeep = setTimeout(() => {
      this.upkeeping = runUpkeep(this.pool, this.config.audit)
        .then((result) => {
          if (result.droppedPartitions.length || result.prunedRequests) this.log.info(result, 'audit retention applied');
        })
        .catch((error: unknown) => this.log.warn({ err: error }, 'partition upkeep failed; will try again'))
        .finally(() => {
          this.upkeeping = null;
          if (this.upkeep) this.scheduleUpkeep(this.config.audit.upkeepIntervalMs);
        });
    }, delayMs);
    this.upkeep.unref();
  }

  /** The next reaper run starts only after the last one ended, so runs never overlap. */
  private scheduleReap(): void {
    this.reaper = setTimeout(() => {
      this.reaping = this.reap().finally(() => {
        this.reaping = null;
        if (this.reaper) this.scheduleReap();
      });
    }, this.config.locks.reaperIntervalMs);
    this.reaper.unref();
  }

  private async reap(): Promise<void> {
    try {
      await this.locks.reapExpired();
      const now = Date.now();
      const owned = await this.partitionStates();
      for (const part of owned) part.prune(now);
      if (now - this.lastSweepAt >= this.config.worker.outboxSweepMs) {
        this.lastSweepAt = now;
        let swept = 0;
        for (const part of owned) if (!part.closed) swept += await sweepOutbox(this.intake, this.topics.requests, part);
        if (swept) this.log.info({ swept }, 'outbox sweep published outcomes left unpublished');
      }
    } catch (error) {
      this.log.warn({ err: error }, 'lock reaper or outbox sweep failed; will try again');
    }
  }
}
