import type { KeyObject } from 'node:crypto';
import type { ConnectionOptions } from 'node:tls';
import { Kafka, logLevel, type Producer, type SASLOptions } from 'kafkajs';
import { keyedPartitioner } from '../contract/kafka-client.ts';
import { parsePrivateKey, parsePublicKey, SIGNATURE_HEADER, signValue } from '../contract/signing.ts';
import { newId } from '../contract/ids.ts';
import { buildRequest, normalizeRequestId, type RemediationRequest, type RequestInput } from '../contract/request.ts';
import type { RemediationOutcome } from '../contract/outcome.ts';
import { Serde } from '../contract/serde.ts';
import { topicNames } from '../contract/topics.ts';
import { compileScopeRules, DEFAULT_SCOPE_RULES, tryParseArn, type ScopeResolver, type ScopeRule } from '../routing/index.ts';
import type { PlanCommand, PlanEvent, PlanStepInput } from '../contract/plan.ts';
import type { ObservedChange, ResourceObservation } from '../contract/observation.ts';

/** An observation as an agent or executor writes it; the SDK fills the id and the time. */
export interface ObservationInput {
  resourceArn: string;
  version?: number | null;
  state?: Record<string, unknown>;
  source: string;
  observationId?: string;
  observedAt?: number;
  effectiveRequestIds?: string[] | null;
  recentChanges?: ObservedChange[];
}
import { OutcomeWatcher } from './outcome-watcher.ts';
import { PlanWatcher, type PlanResult } from './plan-watcher.ts';

export interface ArbiterClientOptions {
  brokers: string[];
  schemaRegistryUrl: string;
  topicPrefix?: string;
  clientId?: string;
  /** The same scope rules the workers use; a mismatch is harmless (workers re-route) but costs a hop. */
  scopeRules?: ScopeRule[];
  /**
   * This agent's Ed25519 private key (PEM, from `arbiter keys generate`): every request is signed
   * with it, so no one else can send requests in this agent's name (docs/SECURITY.md).
   */
  signingKey?: string;
  /**
   * Arbiter's public keys (signatures.arbiterKeys): when given, only outcomes signed by one of them
   * are believed; a forged or unsigned outcome on the topic is ignored.
   */
  outcomeKeys?: string[];
  /**
   * TLS to the brokers, as kafkajs takes it (`true`, or tls.connect options: ca, cert, key,
   * servername). From an Arbiter config: `...kafkaSecurityOptions(config)`.
   */
  ssl?: ConnectionOptions | boolean;
  /**
   * SASL, as kafkajs takes it: `{ mechanism: 'scram-sha-512', username, password }` (also
   * scram-sha-256 and plain), or `{ mechanism: 'oauthbearer', oauthBearerProvider }` as the hook
   * for OAuth. Never logged by the client.
   */
  sasl?: SASLOptions;
  /**
   * How long the first submit (or `connect`) keeps trying to register the schemas while the
   * registry is slow or down, before it fails with REGISTRY_UNAVAILABLE. Default 30 s.
   */
  schemaRegistrationTimeoutMs?: number;
}

/**
 * What an agent imports: submit remediation requests keyed by scope, and await their outcomes.
 * Requests are Confluent-framed Avro, so agents in other languages can do the same with any
 * Confluent-compatible client.
 */
export class ArbiterClient {
  private readonly kafka: Kafka;
  private readonly producer: Producer;
  private readonly serde: Serde;
  private readonly scopes: ScopeResolver;
  private readonly topics: ReturnType<typeof topicNames>;
  private readonly watcher: OutcomeWatcher;
  private planWatcher: PlanWatcher | null = null;
  private readonly signingKey: KeyObject | null;
  private connected = false;

  constructor(options: ArbiterClientOptions) {
    this.topics = topicNames(options.topicPrefix);
    this.kafka = new Kafka({
      clientId: options.clientId ?? 'arbiter-agent',
      brokers: options.brokers,
      logLevel: logLevel.NOTHING,
      ...(options.ssl !== undefined ? { ssl: options.ssl } : {}),
      ...(options.sasl !== undefined ? { sasl: options.sasl } : {}),
    });
    this.producer = this.kafka.producer({
      idempotent: true,
      maxInFlightRequests: 1,
      allowAutoTopicCreation: false,
      // The Java-compatible murmur2 partitioner, named explicitly: it is what routing/partitioner.ts mirrors.
      createPartitioner: keyedPartitioner,
    });
    this.serde = new Serde(options.schemaRegistryUrl, this.topics, { registerWithinMs: options.schemaRegistrationTimeoutMs });
    this.signingKey = options.signingKey ? parsePrivateKey(options.signingKey) : null;
    this.scopes = compileScopeRules([...(options.scopeRules ?? []), ...DEFAULT_SCOPE_RULES]);
    this.watcher = new OutcomeWatcher(this.kafka, this.serde, this.topics.outcomes, (options.outcomeKeys ?? []).map(parsePublicKey));
  }

  /** Connects the producer and starts following outcomes; call before submitting if you will await. */
  async connect(options: { watchOutcomes?: boolean } = {}): Promise<this> {
    if (this.connected) return this;
    await this.serde.register();
    await this.producer.connect();
    if (options.watchOutcomes ?? true) await this.watcher.start();
    this.connected = true;
    return this;
  }

  /** The scope a resource belongs to: the Kafka key of its requests. Invalid ARNs key by themselves (the worker rejects them). */
  scopeOf(resourceArn: string): string {
    const parsed = tryParseArn(resourceArn);
    return parsed.ok ? this.scopes.scopeOf(parsed.arn) : resourceArn;
  }

  async submit(input: RequestInput): Promise<RemediationRequest> {
    return (await this.submitMany([input]))[0]!;
  }

  /** Submits several requests in one produce call. */
  async submitMany(inputs: RequestInput[]): Promise<RemediationRequest[]> {
    if (!this.connected) await this.connect();
    const requests = inputs.map((i) => buildRequest(i));
    const messages = await Promise.all(
      requests.map(async (r) => {
        const value = await this.serde.encodeRequest(r);
        return { key: this.scopeOf(r.resourceArn), value, ...(this.signingKey ? { headers: { [SIGNATURE_HEADER]: signValue(this.signingKey, value) } } : {}) };
      }),
    );
    await this.producer.send({ topic: this.topics.requests, acks: -1, messages });
    return requests;
  }

  awaitOutcome(
    requestId: string,
    options: { timeoutMs?: number; onProgress?: (o: RemediationOutcome) => void } = {},
  ): Promise<RemediationOutcome> {
    // Workers answer by the normalized (lower-case) id; an agent may hold it in either case.
    return this.watcher.wait(normalizeRequestId(requestId), options.timeoutMs ?? 60_000, options.onProgress);
  }

  async submitAndWait(input: RequestInput, options: { timeoutMs?: number } = {}): Promise<RemediationOutcome> {
    const request = await this.submit(input);
    return this.awaitOutcome(request.requestId, options);
  }

  /**
   * A plan: steps that run in order, each released only once the steps it comes after have
   * EXECUTED (verified). Without `after`, each step comes after the one before it.
   *
   *   const plan = await client.plan([{ action: 'drain', resourceArn: node }, { action: 'terminate', resourceArn: node }], { agentId }).submit();
   *   const { status, events } = await plan.wait();
   */
  plan(steps: PlanStepInput[], options: { agentId: string; planId?: string; deadline?: number; reason?: string; incidentId?: string }): PlanHandle {
    const planId = options.planId ?? newId();
    const command: PlanCommand = {
      commandId: newId(),
      type: 'submit',
      planId,
      agentId: options.agentId,
      steps: steps.map((s, i) => ({
        requestId: s.requestId ?? newId(),
        action: s.action,
        resourceArn: s.resourceArn,
        params: s.params ?? {},
        after: s.after ?? (i === 0 ? [] : [i - 1]),
      })),
      deadline: options.deadline ?? null,
      reason: options.reason ?? null,
      incidentId: options.incidentId ?? null,
      requestedAt: Date.now(),
    };
    return new PlanHandle(this, command);
  }

  /**
   * Publishes what this agent (or executor) sees of a resource, keyed by its scope like requests.
   * Arbiter's detector compares observations with the changes it verified (docs/DETECTION.md).
   */
  async observe(input: ObservationInput): Promise<ResourceObservation> {
    return (await this.observeMany([input]))[0]!;
  }

  async observeMany(inputs: ObservationInput[]): Promise<ResourceObservation[]> {
    if (!this.connected) await this.connect({ watchOutcomes: false });
    const observations = inputs.map((i): ResourceObservation => ({
      observationId: i.observationId ?? newId(),
      resourceArn: i.resourceArn,
      version: i.version ?? null,
      state: JSON.stringify(i.state ?? {}),
      source: i.source,
      observedAt: i.observedAt ?? Date.now(),
      effectiveRequestIds: i.effectiveRequestIds ?? null,
      recentChanges: i.recentChanges ?? [],
    }));
    const messages = await Promise.all(observations.map(async (o) => ({ key: this.scopeOf(o.resourceArn), value: await this.serde.encodeObservation(o) })));
    await this.producer.send({ topic: this.topics.observations, acks: -1, messages });
    return observations;
  }

  /** Asks for a plan to stop: steps not yet released end CANCELLED. Only the agent that submitted it may. */
  async cancelPlan(planId: string, agentId: string, reason?: string): Promise<void> {
    await this.sendPlanCommand({ commandId: newId(), type: 'cancel', planId, agentId, steps: [], deadline: null, reason: reason ?? null, incidentId: null, requestedAt: Date.now() });
  }

  /** Waits until the plan ends; `onEvent` sees each of its events in order. */
  async awaitPlan(planId: string, options: { timeoutMs?: number; onEvent?: (event: PlanEvent) => void } = {}): Promise<PlanResult> {
    return this.plans().wait(planId.toLowerCase(), options.timeoutMs ?? 300_000, options.onEvent);
  }

  /** @internal */
  async sendPlanCommand(command: PlanCommand): Promise<void> {
    if (!this.connected) await this.connect();
    await this.serde.registerPlans();
    // Following plan events before the command goes out, so none of its events can be missed.
    await this.plans().start();
    const value = await this.serde.encodePlanCommand(command);
    const headers = this.signingKey ? { [SIGNATURE_HEADER]: signValue(this.signingKey, value) } : undefined;
    await this.producer.send({ topic: this.topics.planCommands, acks: -1, messages: [{ key: command.planId, value, ...(headers ? { headers } : {}) }] });
  }

  private plans(): PlanWatcher {
    this.planWatcher ??= new PlanWatcher(this.kafka, this.serde, this.topics.planEvents);
    return this.planWatcher;
  }

  async close(): Promise<void> {
    await this.planWatcher?.close();
    await this.watcher.close();
    await this.producer.disconnect().catch(() => {});
  }
}

/** A plan built by `ArbiterClient.plan`: submit it, then wait for it to end. */
export class PlanHandle {
  constructor(
    private readonly client: ArbiterClient,
    readonly command: PlanCommand,
  ) {}

  get planId(): string {
    return this.command.planId;
  }

  /** The request id each step becomes when released, in step order: their outcomes can be awaited too. */
  get requestIds(): string[] {
    return this.command.steps.map((s) => s.requestId);
  }

  async submit(): Promise<this> {
    await this.client.sendPlanCommand(this.command);
    return this;
  }

  wait(options: { timeoutMs?: number; onEvent?: (event: PlanEvent) => void } = {}): Promise<PlanResult> {
    return this.client.awaitPlan(this.planId, options);
  }

  cancel(reason?: string): Promise<void> {
    return this.client.cancelPlan(this.planId, this.command.agentId, reason);
  }
}
