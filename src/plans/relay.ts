import type { Consumer, EachBatchPayload, Kafka, Message, Producer } from 'kafkajs';
import { deadLetterSideRecord, type AuditStore } from '../audit/index.ts';
import type { ArbiterConfig } from '../config/index.ts';
import { ArbiterError } from '../contract/errors.ts';
import type { PlanCommand, PlanSpec } from '../contract/plan.ts';
import type { Serde } from '../contract/serde.ts';
import { SIGNATURE_HEADER, signValue } from '../contract/signing.ts';
import type { TopicNames } from '../contract/topics.ts';
import { authenticate, isRequestId } from '../decide/index.ts';
import type { Logger } from '../logging/index.ts';
import type { Metrics } from '../metrics/index.ts';
import { tryParseArn } from '../routing/index.ts';
import type { OutboxRow, PlanStore } from './store.ts';

export interface RelayContext {
  config: Readonly<ArbiterConfig>;
  kafka: Kafka;
  producer: Producer;
  serde: Serde;
  plans: PlanStore;
  audit: AuditStore;
  topics: TopicNames;
  metrics: Metrics;
  log: Logger;
}

/**
 * The plan relay: takes agents' plan commands from Kafka into PostgreSQL, advances plans whose
 * released steps have an outcome (or whose deadline passed, or that were cancelled), and publishes
 * the outbox — step requests to the requests topic, plan events to the plan-events topic. All its
 * state is in PostgreSQL, so it can be killed at any point and any number can run: a plan is
 * advanced under its row lock, the outbox is published by one relay at a time.
 */
export class PlanRelay {
  private readonly consumer: Consumer;
  private timer: NodeJS.Timeout | null = null;
  private passing: Promise<void> | null = null;
  private stopped = false;

  constructor(private readonly ctx: RelayContext) {
    this.consumer = ctx.kafka.consumer({
      groupId: `${ctx.config.kafka.groupId}.plans`,
      sessionTimeout: ctx.config.kafka.sessionTimeoutMs,
      heartbeatInterval: ctx.config.kafka.heartbeatIntervalMs,
      maxWaitTimeInMs: ctx.config.kafka.fetchMaxWaitMs,
      allowAutoTopicCreation: false,
    });
  }

  async start(): Promise<void> {
    await this.ctx.serde.registerPlans();
    await this.consumer.connect();
    await this.consumer.subscribe({ topic: this.ctx.topics.planCommands, fromBeginning: true });
    await this.consumer.run({ eachBatchAutoResolve: false, eachBatch: (payload) => this.onCommands(payload) });
    this.schedule(0);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.passing;
    await this.consumer.disconnect().catch(() => {});
  }

  /** Runs a pass now (tests, and after a command, so a new plan's first steps go out at once). */
  async pass(): Promise<void> {
    this.passing ??= this.runPass().finally(() => (this.passing = null));
    return this.passing;
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.pass()
        .catch((error) => this.ctx.log.warn({ err: error }, 'plan relay pass failed; will try again'))
        .finally(() => this.schedule(this.ctx.config.plans.pollMs));
    }, ms);
  }

  private async runPass(): Promise<void> {
    const { plans } = this.ctx;
    for (const planId of await plans.plansWithWork()) await plans.advance(planId);
    while ((await plans.relayOutbox((rows) => this.publish(rows))) > 0 && !this.stopped);
  }

  private async publish(rows: OutboxRow[]): Promise<void> {
    const { serde, topics, config, producer, metrics } = this.ctx;
    const requests: Message[] = [];
    const events: Message[] = [];
    for (const row of rows) {
      if (row.kind === 'request') {
        const parsed = tryParseArn(row.payload.resourceArn);
        const key = parsed.ok ? config.compiled.scopes.scopeOf(parsed.arn) : row.payload.resourceArn;
        const value = await serde.encodeRequest(row.payload);
        // Released on the plan's agent's behalf: signed by Arbiter, whose key the workers trust.
        const signer = config.compiled.arbiterSigningKey;
        requests.push({ key, value, ...(signer ? { headers: { [SIGNATURE_HEADER]: signValue(signer, value) } } : {}) });
      } else {
        events.push({ key: row.planId, value: await serde.encodePlanEvent(row.payload) });
      }
    }
    const batches = [
      ...(requests.length ? [{ topic: topics.requests, messages: requests }] : []),
      ...(events.length ? [{ topic: topics.planEvents, messages: events }] : []),
    ];
    await producer.sendBatch({ topicMessages: batches, acks: -1 });
    if (requests.length) metrics.planOutboxRelayed.inc({ kind: 'request' }, requests.length);
    if (events.length) metrics.planOutboxRelayed.inc({ kind: 'event' }, events.length);
  }

  /**
   * Commands are applied one by one and their offsets resolved only once PostgreSQL holds them. An
   * undecodable one goes to the dead-letter topic and the audit trail; a malformed one becomes a
   * REJECTED plan (with its reason as an event); neither stalls the partition.
   */
  private async onCommands({ batch, resolveOffset, heartbeat }: EachBatchPayload): Promise<void> {
    for (const message of batch.messages) {
      let command: PlanCommand;
      try {
        command = await this.ctx.serde.decodePlanCommand(message.value);
      } catch (error) {
        if (error instanceof ArbiterError && error.code === 'REGISTRY_UNAVAILABLE') throw error;
        await this.deadLetter(batch.topic, batch.partition, message, error);
        resolveOffset(message.offset);
        continue;
      }
      const signature = message.headers?.[SIGNATURE_HEADER];
      const auth = authenticate(command, message.value, (Array.isArray(signature) ? signature[0] : signature)?.toString(), this.ctx.config.compiled.signatures, Date.now());
      await this.apply(command, auth.ok ? null : auth.reason);
      resolveOffset(message.offset);
      await heartbeat();
    }
    void this.pass().catch(() => {});
  }

  /** `refusal`: why the command's sender could not be verified; such a plan is REJECTED, such a cancel ignored. */
  private async apply(command: PlanCommand, refusal: string | null): Promise<void> {
    const { plans, log, config } = this.ctx;
    if (command.type === 'cancel') {
      if (refusal) return log.warn({ planId: command.planId, agentId: command.agentId, refusal }, 'cancel ignored: its sender could not be verified');
      const plan = await plans.summary(command.planId);
      if (!plan) return log.warn({ planId: command.planId }, 'cancel for an unknown plan ignored');
      if (plan.agentId !== command.agentId) {
        return log.warn({ planId: command.planId, agentId: command.agentId }, 'cancel ignored: only the agent that submitted a plan may cancel it');
      }
      await plans.requestCancel(command.planId, command.agentId, command.reason);
      return;
    }
    await plans.create(specOf(command, Date.now() + config.plans.defaultDeadlineMs), Date.now(), refusal);
  }

  private async deadLetter(topic: string, partition: number, message: EachBatchPayload['batch']['messages'][number], error: unknown): Promise<void> {
    const { producer, audit, metrics, topics } = this.ctx;
    const code = await deadLetterSideRecord({ producer, audit, deadLetterTopic: topics.deadLetter, countDeadLetter: (c) => metrics.deadLetters.inc({ code: c }) }, topic, partition, message, error);
    this.ctx.log.warn({ topic, partition, offset: message.offset, code }, 'undecodable plan command dead-lettered');
  }
}

/** A submit command as a plan; an unknown command type or a bad id makes a plan that validation rejects. */
export function specOf(command: PlanCommand, defaultDeadline: number): PlanSpec {
  const steps = command.steps.map((s, step) => ({ ...s, step, requestId: isRequestId(s.requestId) ? s.requestId.toLowerCase() : s.requestId }));
  const spec: PlanSpec = {
    planId: command.planId.toLowerCase(),
    agentId: command.agentId,
    steps: command.type === 'submit' ? steps : [],
    deadline: command.deadline ?? defaultDeadline,
    reason: command.type === 'submit' ? command.reason : `unknown plan command type '${command.type}'`,
    incidentId: command.incidentId,
    parentRequestId: null,
  };
  return spec;
}
