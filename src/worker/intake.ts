import type { KafkaMessage, Producer } from 'kafkajs';
import type { ActionName } from '../contract/actions.ts';
import { ArbiterError, errorMessage } from '../contract/errors.ts';
import type { RemediationOutcome } from '../contract/outcome.ts';
import type { RemediationRequest } from '../contract/request.ts';
import type { Serde } from '../contract/serde.ts';
import { HEADERS } from '../contract/topics.ts';
import { coalesceKey } from '../coalesce/index.ts';
import { validateRequest } from '../decide/index.ts';
import type { DeadLetterRow, DecisionRow, RequestRow, RequestStateRow } from '../audit/index.ts';
import { partitionForKey, tryParseArn, type Policy, type ScopeResolver } from '../routing/index.ts';
import type { PipelineContext } from './context.ts';
import { buildOutcome, decisionRow, followerFields, type OutcomeFields } from './outcomes.ts';
import type { PartitionState } from './partition-state.ts';
import { newPending, type Follower, type PendingRequest } from './pending.ts';
import { adoptDecidedElsewhere } from './recovery.ts';

const MAX_UNACKED_OUTCOMES = 20_000;

export interface IntakeContext extends PipelineContext {
  serde: Serde;
  producer: Producer;
  scopes: ScopeResolver;
  policy: Policy;
  topics: { requests: string; deadLetter: string };
  requestPartitions: number;
}

export interface BatchInput {
  topic: string;
  partition: number;
  messages: KafkaMessage[];
}

/** What one batch decided: made durable together, then acted on. */
interface BatchPlan {
  requests: RequestRow[];
  states: RequestStateRow[];
  decisions: DecisionRow[];
  deadLetters: DeadLetterRow[];
  deadLetterRecords: Array<{ key: Buffer | null; value: Buffer | null; headers: Record<string, string> }>;
  reroutes: Array<{ partition: number; key: string; value: Buffer; headers: Record<string, string> }>;
  outcomes: RemediationOutcome[];
  newPrimaries: PendingRequest[];
  attach: Array<{ primary: PendingRequest; follower: Follower }>;
  /** Kafka append times of the records decided, to measure until the decisions are durable. */
  appendedAt: number[];
}

/**
 * Steps 1-3 and the arrival-time decisions of the pipeline, for one batch in partition order:
 * decode (or dead-letter), re-route records keyed off their scope, validate, authorize, drop
 * redeliveries, expire, coalesce; everything else is accepted into its scope's queue. The whole
 * batch is made durable in one transaction before the caller commits its offsets.
 */
export async function takeBatch(ctx: IntakeContext, part: PartitionState, batch: BatchInput): Promise<void> {
  const decoded = await decodeAll(ctx, batch);
  const known = await ctx.audit.knownRequestIds(
    decoded.flatMap((d) => (d.kind === 'request' ? [d.request.requestId] : [])),
  );
  const plan: BatchPlan = {
    requests: [],
    states: [],
    decisions: [],
    deadLetters: [],
    deadLetterRecords: [],
    reroutes: [],
    outcomes: [],
    newPrimaries: [],
    attach: [],
    appendedAt: [],
  };
  if (known.size) await adoptDecidedElsewhere(ctx, part, [...known]);
  const seen = new Set<string>();
  const now = Date.now();
  for (const item of decoded) {
    if (item.kind === 'dead-letter') {
      addDeadLetter(plan, batch, item.message, item.error);
      continue;
    }
    const { request, message } = item;
    if (known.has(request.requestId) || seen.has(request.requestId)) continue; // redelivery: decided already
    seen.add(request.requestId);
    plan.appendedAt.push(Number(message.timestamp));
    decideArrival(ctx, part, batch, plan, request, message, now);
  }

  // Side effects that must precede the offset commit: dead letters and re-routed copies are produced
  // (at-least-once; a repeat is harmless), then the decisions are committed to Postgres.
  await produceSideRecords(ctx, plan);
  await ctx.audit.recordArrivals(plan);
  const durableAt = Date.now();
  for (const t of plan.appendedAt) ctx.metrics.decisionLatency.observe((durableAt - t) / 1000);
  for (const d of plan.decisions) ctx.metrics.decisions.inc({ status: d.status, action: d.action });
  for (const entry of plan.newPrimaries) part.enqueue(entry);
  for (const { primary, follower } of plan.attach) {
    if (primary.finished) {
      plan.outcomes.push(buildOutcome(follower.request, follower.scope, followerFields(primary.request.requestId, primary.finished), ctx.workerId));
    } else {
      primary.followers.push(follower);
    }
  }
  // Not awaited: the outcomes are in the outbox (request_state.outcome_published), so the next
  // chunk need not wait for Kafka; a failed publish is retried, and republished by a new owner.
  const publishing = ctx.publisher.publish(plan.outcomes);
  // …unless Kafka falls behind: then wait, so memory stays bounded.
  if (ctx.publisher.inFlight > MAX_UNACKED_OUTCOMES) await publishing;
}

type Decoded =
  | { kind: 'request'; request: RemediationRequest; message: KafkaMessage }
  | { kind: 'dead-letter'; message: KafkaMessage; error: ArbiterError };

async function decodeAll(ctx: IntakeContext, batch: BatchInput): Promise<Decoded[]> {
  const out: Decoded[] = [];
  for (const message of batch.messages) {
    try {
      out.push({ kind: 'request', request: await ctx.serde.decodeRequest(message.value), message });
    } catch (error) {
      // A registry outage is retryable: rethrow so this batch is fetched again, nothing is dead-lettered.
      if (error instanceof ArbiterError && error.retryable) throw error;
      const permanent = error instanceof ArbiterError ? error : new ArbiterError('DECODE_FAILED', errorMessage(error), { cause: error });
      out.push({ kind: 'dead-letter', message, error: permanent });
    }
  }
  return out;
}

function headerText(message: KafkaMessage, name: string): string | undefined {
  const value = message.headers?.[name];
  if (value === undefined) return undefined;
  return Array.isArray(value) ? value[0]?.toString() : value.toString();
}

function addDeadLetter(plan: BatchPlan, batch: BatchInput, message: KafkaMessage, error: ArbiterError): void {
  const originalHeaders: Record<string, string> = {};
  for (const [k, v] of Object.entries(message.headers ?? {})) {
    if (v !== undefined) originalHeaders[k] = (Array.isArray(v) ? v[0] : v)?.toString('base64') ?? '';
  }
  const headers = {
    ...Object.fromEntries(Object.entries(message.headers ?? {}).map(([k, v]) => [k, String(Array.isArray(v) ? v[0] : v)])),
    [HEADERS.error]: error.message,
    [HEADERS.errorCode]: error.code,
    [HEADERS.sourceTopic]: batch.topic,
    [HEADERS.sourcePartition]: String(batch.partition),
    [HEADERS.sourceOffset]: message.offset,
  };
  plan.deadLetterRecords.push({ key: message.key, value: message.value, headers });
  plan.deadLetters.push({
    topic: batch.topic,
    partition: batch.partition,
    offset: message.offset,
    key: message.key,
    value: message.value,
    headers: originalHeaders,
    errorCode: error.code,
    error: error.message,
  });
}

function decideArrival(
  ctx: IntakeContext,
  part: PartitionState,
  batch: BatchInput,
  plan: BatchPlan,
  request: RemediationRequest,
  message: KafkaMessage,
  now: number,
): void {
  const parsed = tryParseArn(request.resourceArn);
  const scope = parsed.ok ? ctx.scopes.scopeOf(parsed.arn) : (message.key?.toString() ?? request.resourceArn);
  const reroutedFromHeader = headerText(message, HEADERS.reroutedFrom);
  const key = coalesceKey(request.resourceArn, request.action, request.params);
  const base = {
    request,
    scope,
    topic: batch.topic,
    partition: batch.partition,
    offset: message.offset,
    reroutedFrom: reroutedFromHeader === undefined ? null : Number(reroutedFromHeader),
  };

  if (parsed.ok) {
    const owner = partitionForKey(scope, ctx.requestPartitions);
    if (owner !== batch.partition) {
      // Keyed by something other than its scope (another client's partitioner, or older scope rules):
      // move it to its scope's partition so one owner decides everything about that scope.
      plan.reroutes.push({
        partition: owner,
        key: scope,
        value: message.value!,
        headers: { [HEADERS.reroutedFrom]: String(batch.partition), 'arbiter-original-key': message.key?.toString() ?? '' },
      });
      plan.decisions.push(
        decisionRow(request, scope, { status: 'REROUTED', final: false, detail: `keyed onto partition ${batch.partition}; moved to partition ${owner} of its scope` }),
      );
      ctx.metrics.rerouted.inc();
      return;
    }
  }

  const immediate = (fields: OutcomeFields, primaryRequestId: string | null = null) => {
    plan.requests.push(base);
    plan.states.push(stateRow(request, scope, batch, key, { ...fields, primaryRequestId }));
    plan.decisions.push(decisionRow(request, scope, { ...fields, primaryRequestId, latencyMs: now - Number(message.timestamp) }));
    plan.outcomes.push(buildOutcome(request, scope, { ...fields, primaryRequestId }, ctx.workerId, now));
  };

  if (!parsed.ok) return immediate({ status: 'REJECTED_INVALID', final: true, detail: `invalid resourceArn: ${parsed.reason}` });
  const problems = validateRequest(request, ctx.config.limits);
  if (problems.length) return immediate({ status: 'REJECTED_INVALID', final: true, detail: problems.join('; ') });
  const auth = ctx.policy.authorize(request.agentId, request.action, parsed.arn);
  if (!auth.allowed) return immediate({ status: 'REJECTED_UNAUTHORIZED', final: true, detail: auth.reason });
  if (request.deadline !== null && request.deadline <= now) {
    return immediate({ status: 'EXPIRED', final: true, detail: 'deadline passed before the request was decided' });
  }

  const match = part.coalescer.match(key, now);
  if (match?.kind === 'finished') {
    ctx.metrics.coalesced.inc({ action: request.action });
    return immediate(followerFields(match.primaryRequestId, { ...match.outcome, status: 'EXECUTED', final: true }), match.primaryRequestId);
  }
  if (match?.kind === 'in-flight') {
    const primary = part.primaries.get(match.primaryRequestId) ?? plan.newPrimaries.find((p) => p.request.requestId === match.primaryRequestId);
    if (primary) {
      // Durable now as COALESCED; its outcome is published when the primary finishes.
      ctx.metrics.coalesced.inc({ action: request.action });
      const fields: OutcomeFields = { status: 'COALESCED', final: true, primaryRequestId: primary.request.requestId, detail: `coalesced into ${primary.request.requestId}, in flight` };
      plan.requests.push(base);
      plan.states.push(stateRow(request, scope, batch, key, fields));
      plan.decisions.push(decisionRow(request, scope, { ...fields, latencyMs: now - Number(message.timestamp) }));
      // Attached only once its own decision is durable (after the chunk commits), so the primary
      // never publishes the outcome of a follower that Postgres does not hold yet.
      plan.attach.push({ primary, follower: { request, scope } });
      return;
    }
  }

  const settings = ctx.config.actions[request.action as ActionName];
  const entry = newPending(request, scope, batch.partition, key, now, settings.waitForDuplicates ? settings.coalesceWindowMs : 0);
  part.coalescer.startPrimary(key, request.requestId, settings.coalesceWindowMs);
  plan.newPrimaries.push(entry);
  plan.requests.push(base);
  const accepted: OutcomeFields = { status: 'ACCEPTED', final: false, detail: null };
  plan.states.push(stateRow(request, scope, batch, key, accepted));
  plan.decisions.push(decisionRow(request, scope, { ...accepted, latencyMs: now - Number(message.timestamp) }));
}

function stateRow(request: RemediationRequest, scope: string, batch: BatchInput, key: string, fields: OutcomeFields): RequestStateRow {
  return {
    request,
    scope,
    topic: batch.topic,
    partition: batch.partition,
    coalesceKey: key,
    status: fields.status,
    final: fields.final,
    primaryRequestId: fields.primaryRequestId ?? null,
    resourceVersion: fields.resourceVersion ?? null,
    fencingToken: fields.fencingToken ?? null,
    detail: fields.detail ?? null,
  };
}

async function produceSideRecords(ctx: IntakeContext, plan: BatchPlan): Promise<void> {
  const sends = [];
  if (plan.deadLetterRecords.length) {
    sends.push(ctx.producer.send({ topic: ctx.topics.deadLetter, acks: -1, messages: plan.deadLetterRecords }));
    for (const d of plan.deadLetters) ctx.metrics.deadLetters.inc({ code: d.errorCode });
  }
  if (plan.reroutes.length) sends.push(ctx.producer.send({ topic: ctx.topics.requests, acks: -1, messages: plan.reroutes }));
  await Promise.all(sends);
}
