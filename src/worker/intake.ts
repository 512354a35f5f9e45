import type { KafkaMessage, Producer } from 'kafkajs';
import { isFinal, toOutcome, type FinalDecision } from '../contract/decision.ts';
import { ArbiterError, errorMessage } from '../contract/errors.ts';
import { normalizeIds, type RemediationRequest } from '../contract/request.ts';
import type { Serde } from '../contract/serde.ts';
import { SIGNATURE_HEADER } from '../contract/signing.ts';
import { HEADERS } from '../contract/topics.ts';
import { isSameRequest, storableRequest, type ArrivalRow, type DeadLetterRow } from '../audit/index.ts';
import { isConnectionError } from '../db/index.ts';
import { arrivalRules } from '../config/index.ts';
import { authenticate, decideArrival, isRequestId } from '../decide/index.ts';
import type { PipelineContext } from './context.ts';
import type { Partition } from './partition.ts';

const MAX_UNACKED_OUTCOMES = 20_000;

export interface IntakeContext extends PipelineContext {
  serde: Serde;
  producer: Producer;
  topics: { requests: string; deadLetter: string };
}

export interface ChunkInput {
  topic: string;
  partition: number;
  messages: KafkaMessage[];
}

interface SideRecord {
  partition?: number;
  key: Buffer | string | null;
  value: Buffer | null;
  headers: Record<string, string>;
}

/**
 * Step 1, step 3 and the arrival decisions, for one chunk in partition order: decode (or
 * dead-letter), skip redeliveries, decide each record (decide/arrival.ts), make the whole chunk
 * durable in one transaction, and only then apply it to the partition and publish the answers.
 * The caller commits the offsets afterwards.
 *
 * A record PostgreSQL refuses (whatever validation missed) must not hold the partition up: the
 * chunk is bisected until the refused records are isolated, they are dead-lettered and answered
 * REJECTED_INVALID, and the rest of the chunk is decided again without them.
 */
export async function takeChunk(ctx: IntakeContext, part: Partition, chunk: ChunkInput): Promise<void> {
  for (;;) {
    const refused = await decideChunk(ctx, part, chunk);
    if (!refused.length) return;
    const offsets = new Set(refused.map((r) => r.arrival.offset));
    ctx.log.warn({ partition: chunk.partition, offsets: [...offsets] }, 'PostgreSQL refused records of a chunk: dead-lettered, the rest decided again');
    const rows: DeadLetterRow[] = [];
    const records: SideRecord[] = [];
    for (const { arrival, message, error } of refused) {
      deadLetter(chunk, message, new ArbiterError('INVALID_REQUEST', `the audit store refused the record: ${error}`), rows, records);
      const decision: FinalDecision = { status: 'REJECTED_INVALID', rule: 'validate', detail: `the record cannot be stored: ${error}` };
      void ctx.publisher.publish([toOutcome(arrival.request, arrival.scope, decision, ctx.workerId, Date.now())]);
    }
    await ctx.producer.send({ topic: ctx.topics.deadLetter, acks: -1, messages: records });
    await ctx.audit.recordArrivals({ arrivals: [], deadLetters: rows });
    for (const d of rows) ctx.metrics.deadLetters.inc({ code: d.errorCode });
    chunk = { ...chunk, messages: chunk.messages.filter((m) => !offsets.has(m.offset)) };
  }
}

interface Refused {
  arrival: ArrivalRow;
  message: KafkaMessage;
  error: string;
}

/** Decides and records one chunk; returns the records PostgreSQL refused (then nothing was recorded). */
async function decideChunk(ctx: IntakeContext, part: Partition, chunk: ChunkInput): Promise<Refused[]> {
  const decoded = await decodeAll(ctx, chunk);
  const known = await ctx.audit.knownRequests(decoded.flatMap((d) => (d.kind === 'request' && isRequestId(d.request.requestId) ? [d.request.requestId] : [])));
  const now = Date.now();
  // Redeliveries of requests this partition owns but does not hold (decided by a previous owner
  // after this one recovered the partition) are adopted; another partition's requests never are.
  const strangers = [...known].filter(([id, k]) => k.topic === chunk.topic && k.partition === chunk.partition && !part.holds(id)).map(([id]) => id);
  if (strangers.length) part.adopt(await ctx.audit.loadByIds(strangers, chunk.topic, chunk.partition), now);

  const rules = arrivalRules(ctx.config);
  const chunkState = part.beginChunk(now);
  const arrivals: ArrivalRow[] = [];
  const deadLetters: DeadLetterRow[] = [];
  const deadLetterRecords: SideRecord[] = [];
  const reroutes: SideRecord[] = [];
  const seen = new Map<string, RemediationRequest>();
  const messageOf = new Map<string, KafkaMessage>();
  /** Answered without working state of their own: no usable id, or an id that belongs to another request. */
  const stateless: Array<{ request: RemediationRequest; scope: string; decision: FinalDecision }> = [];
  for (const item of decoded) {
    if (item.kind === 'dead-letter') {
      deadLetter(chunk, item.message, item.error, deadLetters, deadLetterRecords);
      continue;
    }
    const { request, message } = item;
    const scopeKey = message.key?.toString() ?? '';
    if (!isRequestId(request.requestId)) {
      // No request id to key its working state by: kept as a dead letter, and answered by the id it gave.
      deadLetter(chunk, message, new ArbiterError('INVALID_REQUEST', 'requestId is not a UUID'), deadLetters, deadLetterRecords);
      stateless.push({ request, scope: scopeKey, decision: { status: 'REJECTED_INVALID', rule: 'validate', detail: 'requestId is not a UUID' } });
      continue;
    }
    messageOf.set(message.offset, message);
    const earlier = known.get(request.requestId)?.request ?? (seen.has(request.requestId) ? storableRequest(seen.get(request.requestId)!) : undefined);
    if (earlier) {
      if (isSameRequest(earlier, request)) continue; // a redelivery: decided already
      // The id is taken by another request: this one is refused, kept as a dead letter, and answered.
      const detail = `requestId ${request.requestId} was already used for a different request; use a new id for each request`;
      deadLetter(chunk, message, new ArbiterError('DUPLICATE_REQUEST_ID', detail), deadLetters, deadLetterRecords);
      stateless.push({ request, scope: scopeKey, decision: { status: 'REJECTED_DUPLICATE_ID', rule: 'idempotency', detail } });
      continue;
    }
    seen.set(request.requestId, request);
    const authentication = authenticate(request, message.value, headerText(message, SIGNATURE_HEADER), ctx.config.compiled.signatures, now);
    const arrival = decideArrival(request, message.key?.toString() ?? null, chunkState.view, rules, now, authentication);
    chunkState.note(request.requestId, arrival.coalesceKey, arrival.decision);
    const rerouted = headerText(message, HEADERS.reroutedFrom);
    arrivals.push({
      request,
      ...arrival,
      topic: chunk.topic,
      partition: chunk.partition,
      offset: message.offset,
      reroutedFrom: rerouted === undefined ? null : Number(rerouted),
      latencyMs: now - Number(message.timestamp),
    });
    if (arrival.decision.status === 'REROUTED') {
      reroutes.push({
        partition: arrival.decision.toPartition,
        key: arrival.scope,
        value: message.value,
        headers: {
          [HEADERS.reroutedFrom]: String(chunk.partition),
          'arbiter-original-key': message.key?.toString() ?? '',
          // The signature covers the value, which moves unchanged: its owner verifies it again.
          ...(headerText(message, SIGNATURE_HEADER) !== undefined ? { [SIGNATURE_HEADER]: headerText(message, SIGNATURE_HEADER)! } : {}),
        },
      });
    }
  }

  // Side records precede the offset commit (at-least-once; a repeat is harmless), then the decisions become durable.
  await Promise.all([
    deadLetterRecords.length && ctx.producer.send({ topic: ctx.topics.deadLetter, acks: -1, messages: deadLetterRecords }),
    reroutes.length && ctx.producer.send({ topic: ctx.topics.requests, acks: -1, messages: reroutes }),
  ]);
  let fresh: Set<string>;
  try {
    fresh = await ctx.audit.recordArrivals({ arrivals, deadLetters });
  } catch (error) {
    if (isConnectionError(error)) throw error;
    const refused = await isolateRefused(ctx, arrivals);
    if (!refused.length) throw error; // not a record's fault: the chunk is tried again
    const reason = errorMessage(error);
    return refused.map((arrival) => ({ arrival, message: messageOf.get(arrival.offset)!, error: reason }));
  }

  // Durable: now memory and metrics change, and agents are told.
  const durableAt = Date.now();
  for (const d of deadLetters) ctx.metrics.deadLetters.inc({ code: d.errorCode });
  const applied = arrivals.filter((a) => a.decision.status === 'REROUTED' || fresh.has(a.request.requestId));
  for (const a of applied) {
    ctx.metrics.decisionLatency.observe((durableAt - now + (a.latencyMs ?? 0)) / 1000);
    ctx.metrics.countDecision(a.decision.status, a.request.action);
    if (a.decision.status === 'REROUTED') ctx.metrics.rerouted.inc();
    if (a.decision.status === 'COALESCED') ctx.metrics.countCoalesced(a.request.action);
  }
  const owned = applied.filter((a) => a.decision.status !== 'REROUTED');
  const late = part.accept(chunkState, owned.map((a) => ({ ...a, receivedAt: now })));
  const outcomes = [
    ...owned.flatMap((a) =>
      isFinal(a.decision) && !(a.decision.status === 'COALESCED' && a.decision.inFlight) ? [toOutcome(a.request, a.scope, a.decision, ctx.workerId, now)] : [],
    ),
    ...late.map((a) => toOutcome(a.request, a.scope, a.decision, ctx.workerId, durableAt)),
    ...stateless.map((u) => toOutcome(u.request, u.scope, u.decision, ctx.workerId, durableAt)),
  ];
  // Not awaited: the outcomes are in the outbox (request_state.outcome_published), so the next
  // chunk need not wait for Kafka; a failed publish is retried, and republished by a new owner.
  const publishing = ctx.publisher.publish(outcomes);
  // …unless Kafka falls behind: then wait, so memory stays bounded.
  if (ctx.publisher.inFlight > MAX_UNACKED_OUTCOMES) await publishing;
  return [];
}

/** Bisects the chunk with rolled-back probe writes until the records PostgreSQL refuses are isolated. */
async function isolateRefused(ctx: IntakeContext, arrivals: ArrivalRow[]): Promise<ArrivalRow[]> {
  if (!arrivals.length || (await ctx.audit.probeArrivals(arrivals))) return [];
  if (arrivals.length === 1) return arrivals;
  const mid = Math.ceil(arrivals.length / 2);
  return [...(await isolateRefused(ctx, arrivals.slice(0, mid))), ...(await isolateRefused(ctx, arrivals.slice(mid)))];
}

type Decoded =
  | { kind: 'request'; request: RemediationRequest; message: KafkaMessage }
  | { kind: 'dead-letter'; message: KafkaMessage; error: ArbiterError };

async function decodeAll(ctx: IntakeContext, chunk: ChunkInput): Promise<Decoded[]> {
  const out: Decoded[] = [];
  for (const message of chunk.messages) {
    try {
      out.push({ kind: 'request', request: normalizeIds(await ctx.serde.decodeRequest(message.value)), message });
    } catch (error) {
      // A registry outage is retryable: rethrow so this chunk is fetched again, nothing is dead-lettered.
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

function deadLetter(chunk: ChunkInput, message: KafkaMessage, error: ArbiterError, rows: DeadLetterRow[], records: SideRecord[]): void {
  const originalHeaders: Record<string, string> = {};
  for (const [k, v] of Object.entries(message.headers ?? {})) {
    if (v !== undefined) originalHeaders[k] = (Array.isArray(v) ? v[0] : v)?.toString('base64') ?? '';
  }
  records.push({
    key: message.key,
    value: message.value,
    headers: {
      ...Object.fromEntries(Object.entries(message.headers ?? {}).map(([k, v]) => [k, String(Array.isArray(v) ? v[0] : v)])),
      [HEADERS.error]: error.message,
      [HEADERS.errorCode]: error.code,
      [HEADERS.sourceTopic]: chunk.topic,
      [HEADERS.sourcePartition]: String(chunk.partition),
      [HEADERS.sourceOffset]: message.offset,
    },
  });
  rows.push({
    topic: chunk.topic,
    partition: chunk.partition,
    offset: message.offset,
    key: message.key,
    value: message.value,
    headers: originalHeaders,
    errorCode: error.code,
    error: error.message,
  });
}
