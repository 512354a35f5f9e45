import { Kafka, logLevel, Partitioners, type Producer } from 'kafkajs';
import { buildRequest, normalizeRequestId, type RemediationRequest, type RequestInput } from '../contract/request.ts';
import type { RemediationOutcome } from '../contract/outcome.ts';
import { Serde } from '../contract/serde.ts';
import { topicNames } from '../contract/topics.ts';
import { compileScopeRules, DEFAULT_SCOPE_RULES, tryParseArn, type ScopeResolver, type ScopeRule } from '../routing/index.ts';
import { OutcomeWatcher } from './outcome-watcher.ts';

export interface ArbiterClientOptions {
  brokers: string[];
  schemaRegistryUrl: string;
  topicPrefix?: string;
  clientId?: string;
  /** The same scope rules the workers use; a mismatch is harmless (workers re-route) but costs a hop. */
  scopeRules?: ScopeRule[];
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
  private connected = false;

  constructor(options: ArbiterClientOptions) {
    this.topics = topicNames(options.topicPrefix);
    this.kafka = new Kafka({ clientId: options.clientId ?? 'arbiter-agent', brokers: options.brokers, logLevel: logLevel.NOTHING });
    this.producer = this.kafka.producer({
      idempotent: true,
      maxInFlightRequests: 1,
      allowAutoTopicCreation: false,
      // The Java-compatible murmur2 partitioner, named explicitly: it is what routing/partitioner.ts mirrors.
      createPartitioner: Partitioners.DefaultPartitioner,
    });
    this.serde = new Serde(options.schemaRegistryUrl, this.topics);
    this.scopes = compileScopeRules([...(options.scopeRules ?? []), ...DEFAULT_SCOPE_RULES]);
    this.watcher = new OutcomeWatcher(this.kafka, this.serde, this.topics.outcomes);
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
      requests.map(async (r) => ({ key: this.scopeOf(r.resourceArn), value: await this.serde.encodeRequest(r) })),
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

  async close(): Promise<void> {
    await this.watcher.close();
    await this.producer.disconnect().catch(() => {});
  }
}
