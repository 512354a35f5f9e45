import type { Consumer, EachBatchPayload, Kafka, Producer } from 'kafkajs';
import pg from 'pg';
import { deadLetterSideRecord, type AuditStore } from '../audit/index.ts';
import type { ArbiterConfig } from '../config/index.ts';
import { ArbiterError } from '../contract/errors.ts';
import type { ResourceObservation } from '../contract/observation.ts';
import type { Serde } from '../contract/serde.ts';
import type { TopicNames } from '../contract/topics.ts';
import type { Logger } from '../logging/index.ts';
import type { Metrics } from '../metrics/index.ts';
import { tryParseArn } from '../routing/index.ts';
import { findInconsistencies, type Finding } from './rules.ts';
import type { DetectionStore, RecordedFinding } from './store.ts';

export interface DetectorContext {
  config: Readonly<ArbiterConfig>;
  kafka: Kafka;
  producer: Producer;
  serde: Serde;
  store: DetectionStore;
  audit: AuditStore;
  pool: pg.Pool;
  topics: TopicNames;
  metrics: Metrics;
  log: Logger;
}

// Any pair of workers agree on it: one of them looks for stale observations at a time.
const STALE_SWEEP_LOCK = 0x6172_6264; // 'arbd'

/**
 * The inconsistency detector, running all the time in the workers: observations (from executors,
 * agents, people) are consumed from Kafka as they come — partitioned by scope, so one worker sees
 * a resource's observations in order — stored, and compared with what Arbiter verified. Each
 * finding is recorded once (PostgreSQL, by fingerprint), published on the inconsistencies topic
 * and counted. A timer looks for resources nobody has observed since Arbiter changed them.
 */
export class Detector {
  private readonly consumer: Consumer;
  private timer: NodeJS.Timeout | null = null;
  private sweeping: Promise<void> | null = null;
  private stopped = false;

  constructor(private readonly ctx: DetectorContext) {
    this.consumer = ctx.kafka.consumer({
      groupId: `${ctx.config.kafka.groupId}.observations`,
      sessionTimeout: ctx.config.kafka.sessionTimeoutMs,
      heartbeatInterval: ctx.config.kafka.heartbeatIntervalMs,
      maxWaitTimeInMs: ctx.config.kafka.fetchMaxWaitMs,
      allowAutoTopicCreation: false,
    });
  }

  async start(): Promise<void> {
    await this.consumer.connect();
    await this.consumer.subscribe({ topic: this.ctx.topics.observations, fromBeginning: true });
    await this.consumer.run({ eachBatchAutoResolve: false, eachBatch: (payload) => this.onObservations(payload) });
    this.schedule();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.sweeping;
    await this.consumer.disconnect().catch(() => {});
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.sweeping = this.sweepStale()
        .catch((error) => this.ctx.log.warn({ err: error }, 'stale-observation sweep failed; will try again'))
        .finally(() => {
          this.sweeping = null;
          this.schedule();
        });
    }, this.ctx.config.detection.intervalMs);
  }

  private async onObservations({ batch, resolveOffset, heartbeat }: EachBatchPayload): Promise<void> {
    const { serde, store, config } = this.ctx;
    const decoded: Array<{ observation: ResourceObservation; scope: string; offset: string }> = [];
    for (const message of batch.messages) {
      try {
        const observation = await serde.decodeObservation(message.value);
        const parsed = tryParseArn(observation.resourceArn);
        decoded.push({ observation, scope: parsed.ok ? config.compiled.scopes.scopeOf(parsed.arn) : observation.resourceArn, offset: message.offset });
      } catch (error) {
        if (error instanceof ArbiterError && error.code === 'REGISTRY_UNAVAILABLE') throw error;
        await this.deadLetter(batch.topic, batch.partition, message, error);
      }
    }
    await store.storeObservations(decoded);
    for (const { observation, scope } of decoded) {
      const view = await store.viewFor(observation, config.conflicts.windowMs);
      await this.report(await store.record(findInconsistencies(observation, view), scope));
      await store.noteObserved(observation);
      await heartbeat();
    }
    const last = batch.messages.at(-1);
    if (last) resolveOffset(last.offset);
  }

  private async sweepStale(): Promise<void> {
    const { pool, store, config } = this.ctx;
    const client = await pool.connect();
    try {
      const lock = await client.query('SELECT pg_try_advisory_lock($1) AS ok', [STALE_SWEEP_LOCK]);
      if (!lock.rows[0].ok) return;
      try {
        const findings: Finding[] = await store.staleObservations(config.detection.staleObservationMs);
        await this.report(await store.record(findings, null));
      } finally {
        await client.query('SELECT pg_advisory_unlock($1)', [STALE_SWEEP_LOCK]);
      }
    } finally {
      client.release();
    }
  }

  /** New findings: on the topic and in the metrics (PostgreSQL has them already). */
  private async report(findings: RecordedFinding[]): Promise<void> {
    if (!findings.length) return;
    const { producer, serde, topics, metrics, log } = this.ctx;
    const messages = await Promise.all(
      findings.map(async (f) => ({
        key: f.resourceArn,
        value: await serde.encodeInconsistency({
          findingId: f.findingId,
          kind: f.kind,
          resourceArn: f.resourceArn,
          scope: f.scope,
          detail: f.detail,
          requestIds: f.requestIds,
          agents: f.evidence.agents,
          evidence: JSON.stringify(f.evidence),
          detectedAt: f.detectedAt,
        }),
      })),
    );
    // Counted as soon as recorded: the metric follows the table even if the event cannot be sent.
    for (const f of findings) {
      metrics.inconsistencies.inc({ kind: f.kind });
      log.warn({ kind: f.kind, arn: f.resourceArn, findingId: f.findingId }, f.detail);
    }
    await producer.send({ topic: topics.inconsistencies, acks: -1, messages }).catch((error: unknown) =>
      // The finding is in PostgreSQL already (and will not be raised again): say the event was lost.
      log.warn({ err: error, findings: findings.map((f) => f.findingId) }, 'publishing inconsistency events failed; the findings are recorded'),
    );
  }

  private async deadLetter(topic: string, partition: number, message: EachBatchPayload['batch']['messages'][number], error: unknown): Promise<void> {
    const { producer, audit, metrics, topics } = this.ctx;
    await deadLetterSideRecord({ producer, audit, deadLetterTopic: topics.deadLetter, countDeadLetter: (c) => metrics.deadLetters.inc({ code: c }) }, topic, partition, message, error);
  }
}
