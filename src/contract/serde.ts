import { readFileSync } from 'node:fs';
import { SchemaRegistry, SchemaType, COMPATIBILITY } from '@kafkajs/confluent-schema-registry';
import avro from 'avsc';
import { ArbiterError, errorMessage } from './errors.ts';
import { retryWithBackoff } from './backoff.ts';
import type { RemediationRequest } from './request.ts';
import type { RemediationOutcome } from './outcome.ts';
import type { PlanCommand, PlanEvent } from './plan.ts';
import type { ResourceObservation } from './observation.ts';
import { valueSubject, type TopicNames } from './topics.ts';
import { packagePath } from '../package-files.ts';

export const REQUEST_SCHEMA = JSON.parse(readFileSync(packagePath('schemas', 'remediation-request.avsc'), 'utf8'));
export const OUTCOME_SCHEMA = JSON.parse(readFileSync(packagePath('schemas', 'remediation-outcome.avsc'), 'utf8'));
export const PLAN_COMMAND_SCHEMA = JSON.parse(readFileSync(packagePath('schemas', 'plan-command.avsc'), 'utf8'));
export const PLAN_EVENT_SCHEMA = JSON.parse(readFileSync(packagePath('schemas', 'plan-event.avsc'), 'utf8'));
export const OBSERVATION_SCHEMA = JSON.parse(readFileSync(packagePath('schemas', 'observation.avsc'), 'utf8'));
export const INCONSISTENCY_SCHEMA = JSON.parse(readFileSync(packagePath('schemas', 'inconsistency.avsc'), 'utf8'));

/** A detector finding as published on `<prefix>.inconsistencies` (schemas/inconsistency.avsc). */
export interface InconsistencyEvent {
  findingId: string;
  kind: string;
  resourceArn: string;
  scope: string | null;
  detail: string;
  requestIds: string[];
  agents: string[];
  /** JSON object text. */
  evidence: string;
  detectedAt: number;
}

export interface SerdeOptions {
  /** One registry HTTP call's timeout. Default 10 s. */
  callTimeoutMs?: number;
  /**
   * How long a registration keeps trying while the registry is unreachable, slow or answering 5xx,
   * before REGISTRY_UNAVAILABLE. Registering is idempotent (the same schema gets the same id), so
   * trying again is safe; the registry client itself never retries a POST. Default 30 s; 0 tries
   * once, for callers that wait in a loop of their own that says what it is waiting for.
   */
  registerWithinMs?: number;
}

/**
 * Confluent-framed Avro (magic byte 0, 4-byte schema id, Avro body) through a
 * Confluent-compatible registry. Schema ids are resolved once and cached by the client.
 */
export class Serde {
  private readonly registry: SchemaRegistry;
  private requestSchemaId = 0;
  private outcomeSchemaId = 0;

  /** Each registry HTTP call gives up after this long, so a hung registry cannot hang start-up or intake. */
  private readonly callTimeoutMs: number;
  /** SerdeOptions.registerWithinMs. */
  private readonly registerWithinMs: number;

  constructor(
    private readonly registryUrl: string,
    private readonly topics: TopicNames,
    options: SerdeOptions = {},
  ) {
    this.callTimeoutMs = options.callTimeoutMs ?? 10_000;
    this.registerWithinMs = options.registerWithinMs ?? 30_000;
    // The client's retries apply to its GETs (schema lookups) only; registrations retry in registerOne.
    this.registry = new SchemaRegistry({ host: registryUrl, retry: { retries: 3 }, middlewares: [timeoutMiddleware(this.callTimeoutMs) as never] });
  }

  /**
   * Registers both schemas under their topic subjects with BACKWARD compatibility. Idempotent.
   * Callers that arrive while a registration is under way share it: a thousand encodes on a fresh
   * client make one registration, not a thousand concurrent ones.
   */
  register(): Promise<void> {
    this.registering ??= this.registerBoth().finally(() => (this.registering = null));
    return this.registering;
  }

  private registering: Promise<void> | null = null;

  private async registerBoth(): Promise<void> {
    try {
      this.requestSchemaId = await this.registerOne(this.topics.requests, REQUEST_SCHEMA);
      this.outcomeSchemaId = await this.registerOne(this.topics.outcomes, OUTCOME_SCHEMA);
    } catch (error) {
      throw new ArbiterError('REGISTRY_UNAVAILABLE', `schema registry: ${errorMessage(error)}`, { cause: error });
    }
  }

  /**
   * Registers one schema, trying again with backoff while the registry is unavailable (a timeout, a
   * refused connection, a 5xx) until `registerWithinMs` has passed. An agent's first submit on a
   * loaded machine used to fail at once when Apicurio took longer than one call's timeout to answer.
   */
  private async registerOne(topic: string, schema: unknown): Promise<number> {
    const deadline = Date.now() + this.registerWithinMs;
    return retryWithBackoff(
      () => this.registerOnce(topic, schema),
      (error, _attempt, waitMs) => isRegistryUnavailable(error) && Date.now() + waitMs < deadline,
    );
  }

  private async registerOnce(topic: string, schema: unknown): Promise<number> {
    const subject = valueSubject(topic);
    const register = () =>
      this.registry.register({ type: SchemaType.AVRO, schema: JSON.stringify(schema) }, { subject, compatibility: COMPATIBILITY.BACKWARD });
    for (let attempt = 1; ; attempt++) {
      try {
        return (await register()).id;
      } catch (error) {
        // Workers starting together race on a new subject's compatibility: the loser sees
        // Apicurio's NONE for a subject the winner has not configured yet, or finds the winner's
        // COMPATIBILITY rule already there (on its own update, or on our PUT below). The schema
        // itself is registered either way: make sure the subject says BACKWARD, then try again.
        if (attempt >= 5 || !isCompatibilityRace(errorMessage(error))) throw error;
        const res = await fetch(`${this.registryUrl.replace(/\/+$/, '')}/config/${encodeURIComponent(subject)}`, {
          signal: AbortSignal.timeout(this.callTimeoutMs),
          method: 'PUT',
          headers: { 'content-type': 'application/vnd.schemaregistry.v1+json' },
          body: JSON.stringify({ compatibility: 'BACKWARD' }),
        });
        // 409: another worker created the rule between our read and our write — that is the goal.
        if (!res.ok && res.status !== 409) throw new Error(`setting BACKWARD compatibility on ${subject}: HTTP ${res.status}`, { cause: error });
        await new Promise((resolve) => setTimeout(resolve, 20 * attempt));
      }
    }
  }

  /**
   * The plan schemas are registered only by those who use plans (the relay, an agent submitting a
   * plan). Once registered, a second call costs nothing: the worker registers them in its start-up
   * step that waits for the registry, before the relay it starts asks again.
   */
  registerPlans(): Promise<void> {
    if (this.planCommandSchemaId > 0 && this.planEventSchemaId > 0) return Promise.resolve();
    this.registeringPlans ??= (async () => {
      try {
        this.planCommandSchemaId = await this.registerOne(this.topics.planCommands, PLAN_COMMAND_SCHEMA);
        this.planEventSchemaId = await this.registerOne(this.topics.planEvents, PLAN_EVENT_SCHEMA);
      } catch (error) {
        throw new ArbiterError('REGISTRY_UNAVAILABLE', `schema registry: ${errorMessage(error)}`, { cause: error });
      }
    })().finally(() => (this.registeringPlans = null));
    return this.registeringPlans;
  }

  private registeringPlans: Promise<void> | null = null;
  private planCommandSchemaId = 0;
  private planEventSchemaId = 0;

  async encodePlanCommand(command: PlanCommand): Promise<Buffer> {
    if (!this.planCommandSchemaId) await this.registerPlans();
    return this.registry.encode(this.planCommandSchemaId, command);
  }

  async encodePlanEvent(event: PlanEvent): Promise<Buffer> {
    if (!this.planEventSchemaId) await this.registerPlans();
    return this.registry.encode(this.planEventSchemaId, event);
  }

  async decodePlanCommand(buffer: Buffer | null): Promise<PlanCommand> {
    return (await this.decode(buffer, PLAN_COMMAND_SCHEMA)) as PlanCommand;
  }

  async decodePlanEvent(buffer: Buffer | null): Promise<PlanEvent> {
    return (await this.decode(buffer, PLAN_EVENT_SCHEMA)) as PlanEvent;
  }

  private observationSchemaId = 0;

  /** Registered by those who publish observations (executors, agents) on first use. */
  async encodeObservation(observation: ResourceObservation): Promise<Buffer> {
    if (!this.observationSchemaId) {
      try {
        this.observationSchemaId = await this.registerOne(this.topics.observations, OBSERVATION_SCHEMA);
      } catch (error) {
        throw new ArbiterError('REGISTRY_UNAVAILABLE', `schema registry: ${errorMessage(error)}`, { cause: error });
      }
    }
    return this.registry.encode(this.observationSchemaId, observation);
  }

  private inconsistencySchemaId = 0;

  async encodeInconsistency(event: InconsistencyEvent): Promise<Buffer> {
    if (!this.inconsistencySchemaId) {
      try {
        this.inconsistencySchemaId = await this.registerOne(this.topics.inconsistencies, INCONSISTENCY_SCHEMA);
      } catch (error) {
        throw new ArbiterError('REGISTRY_UNAVAILABLE', `schema registry: ${errorMessage(error)}`, { cause: error });
      }
    }
    return this.registry.encode(this.inconsistencySchemaId, event);
  }

  async decodeInconsistency(buffer: Buffer | null): Promise<InconsistencyEvent> {
    return (await this.decode(buffer, INCONSISTENCY_SCHEMA)) as InconsistencyEvent;
  }

  async decodeObservation(buffer: Buffer | null): Promise<ResourceObservation> {
    return (await this.decode(buffer, OBSERVATION_SCHEMA)) as ResourceObservation;
  }

  get schemaIds(): { request: number; outcome: number } {
    return { request: this.requestSchemaId, outcome: this.outcomeSchemaId };
  }

  async encodeRequest(request: RemediationRequest): Promise<Buffer> {
    if (!this.requestSchemaId) await this.register();
    return this.registry.encode(this.requestSchemaId, request);
  }

  async encodeOutcome(outcome: RemediationOutcome): Promise<Buffer> {
    return (await this.encodeOutcomes([outcome]))[0]!;
  }

  /**
   * Encodes many outcomes, each into one Buffer. The registry client's encode awaits its schema
   * cache and copies every record twice (Avro body, then the framed record); a worker encodes one
   * outcome per request, so here the schema is checked once per call and each record is written
   * straight after its frame header. The registered schema is ours (OUTCOME_SCHEMA), so our
   * compiled type writes what the registry's would.
   */
  async encodeOutcomes(outcomes: readonly RemediationOutcome[]): Promise<Buffer[]> {
    if (!this.outcomeSchemaId) await this.register();
    const type = this.compiled(OUTCOME_SCHEMA);
    return outcomes.map((o) => this.frame(type, this.outcomeSchemaId, o));
  }

  /** Where records are encoded before they are copied out at their exact size; grows when one does not fit. */
  private scratch = Buffer.allocUnsafe(16 * 1024);

  private frame(type: avro.Type, schemaId: number, value: unknown): Buffer {
    for (;;) {
      this.scratch[0] = 0;
      this.scratch.writeUInt32BE(schemaId, 1);
      // Throws on a value the schema does not allow; returns the end, or minus the bytes missing.
      const end = type.encode(value, this.scratch, 5);
      if (end >= 0) return Buffer.from(this.scratch.subarray(0, end));
      this.scratch = Buffer.allocUnsafe(2 * (this.scratch.length - end));
    }
  }

  /** Decodes with our schema as the reader, so records written by older or newer writers resolve. */
  async decodeRequest(buffer: Buffer | null): Promise<RemediationRequest> {
    return (await this.decode(buffer, REQUEST_SCHEMA)) as RemediationRequest;
  }

  /**
   * Decodes a chunk of request records: each writer schema id is resolved once for the chunk, then
   * every record is decoded synchronously (a promise per record was a measurable part of a
   * worker's time). A record that cannot be decoded comes back as its DECODE_FAILED error, in its
   * place; a registry that cannot be reached throws REGISTRY_UNAVAILABLE for the whole chunk.
   */
  async decodeRequests(buffers: ReadonlyArray<Buffer | null>): Promise<Array<RemediationRequest | ArbiterError>> {
    return (await this.decodeMany(buffers, REQUEST_SCHEMA)) as Array<RemediationRequest | ArbiterError>;
  }

  async decodeOutcome(buffer: Buffer | null): Promise<RemediationOutcome> {
    return (await this.decode(buffer, OUTCOME_SCHEMA)) as RemediationOutcome;
  }

  /**
   * The registry client compiles the reader schema for every record it decodes with one (~300 µs
   * each, most of a worker's CPU in the benchmark). We compile our reader once and keep one
   * resolver per writer schema id instead; the client still fetches and caches writer schemas.
   */
  private readonly types = new Map<unknown, avro.Type>();
  private readonly decoders = new Map<string, (body: Buffer) => unknown>();

  /** One of our schemas compiled once: the reader of what we decode, the writer of what we encode. */
  private compiled(schema: unknown): avro.Type {
    let type = this.types.get(schema);
    if (!type) {
      type = avro.Type.forSchema(schema as avro.Schema);
      this.types.set(schema, type);
    }
    return type;
  }

  private async decoderFor(schemaId: number, readerSchema: unknown): Promise<(body: Buffer) => unknown> {
    const reader = this.compiled(readerSchema);
    const key = `${reader.name}:${schemaId}`;
    const cached = this.decoders.get(key);
    if (cached) return cached;
    const writer = (await this.registry.getSchema(schemaId)) as unknown as avro.Type;
    const resolver = reader.createResolver(writer);
    const decode = (body: Buffer) => reader.fromBuffer(body, resolver);
    this.decoders.set(key, decode);
    return decode;
  }

  private async decode(buffer: Buffer | null, readerSchema: unknown): Promise<unknown> {
    const [decoded] = await this.decodeMany([buffer], readerSchema);
    if (decoded instanceof ArbiterError) throw decoded;
    return decoded;
  }

  private async decodeMany(buffers: ReadonlyArray<Buffer | null>, readerSchema: unknown): Promise<unknown[]> {
    const decoders = new Map<number, ((body: Buffer) => unknown) | ArbiterError>();
    for (const buffer of buffers) {
      if (!isFramed(buffer)) continue;
      const schemaId = buffer.readUInt32BE(1);
      if (decoders.has(schemaId)) continue;
      try {
        decoders.set(schemaId, await this.decoderFor(schemaId, readerSchema));
      } catch (error) {
        if (isRegistryUnavailable(error)) {
          // The record may be fine; the registry is not. Retry instead of dead-lettering good data.
          throw new ArbiterError('REGISTRY_UNAVAILABLE', `schema registry unavailable while decoding schema id ${schemaId}: ${errorMessage(error)}`, { cause: error });
        }
        decoders.set(schemaId, cannotDecode(schemaId, error));
      }
    }
    return buffers.map((buffer) => {
      if (!isFramed(buffer)) return new ArbiterError('DECODE_FAILED', 'not Confluent-framed: expected magic byte 0 and a 4-byte schema id');
      const schemaId = buffer.readUInt32BE(1);
      const decode = decoders.get(schemaId)!;
      if (decode instanceof ArbiterError) return decode;
      try {
        return decode(buffer.subarray(5));
      } catch (error) {
        return cannotDecode(schemaId, error);
      }
    });
  }
}

function isFramed(buffer: Buffer | null): buffer is Buffer {
  return buffer !== null && buffer.length >= 6 && buffer[0] === 0;
}

function cannotDecode(schemaId: number, error: unknown): ArbiterError {
  return new ArbiterError('DECODE_FAILED', `cannot decode with schema id ${schemaId}: ${errorMessage(error)}`, { cause: error });
}

/**
 * A per-call timeout for the registry client (a mappersmith middleware; written out here rather
 * than importing mappersmith, which is the registry client's dependency, not ours).
 */
function timeoutMiddleware(ms: number) {
  interface Request {
    timeout(): number | undefined;
    enhance(options: { timeout: number }): Request;
  }
  return () => ({
    async prepareRequest(next: () => Promise<Request>): Promise<Request> {
      const request = await next();
      return request.timeout() ? request : request.enhance({ timeout: ms });
    },
  });
}

function isCompatibilityRace(message: string): boolean {
  return /\(BACKWARD != NONE\)|rule named 'COMPATIBILITY' already exists/.test(message);
}

/**
 * 404 (unknown schema id) and Avro errors are about the record; 5xx and network errors are about
 * the registry. The registry client reports a network error (and a timeout) with status 400, so
 * the message is checked first: a registry restart must never dead-letter good records.
 */
function isRegistryUnavailable(error: unknown): boolean {
  if (/ECONNREFUSED|ECONNRESET|ETIMEDOUT|EAI_AGAIN|EPIPE|socket hang up|fetch failed|Timeout \(\d+ms\)|aborted due to timeout/i.test(errorMessage(error))) return true;
  const status = (error as { status?: number }).status;
  return typeof status === 'number' && (status >= 500 || status === 429);
}
