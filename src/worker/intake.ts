import type { KafkaMessage, Producer } from 'kafkajs';
import { isFinal, toOutcome, type DecisionStatus, type FinalDecision } from '../contract/decision.ts';
import { ArbiterError, errorMessage } from '../contract/errors.ts';
import { normalizeIds, type RemediationRequest } from '../contract/request.ts';
import type { Serde } from '../contract/serde.ts';
import { SIGNATURE_HEADER } from '../contract/signing.ts';
import { HEADERS } from '../contract/topics.ts';
import { isSameRequest, secretParamsOf, storableRequest, type ArrivalRow, type ArrivalWrite, type DeadLetterRow, type KnownRequest } from '../audit/index.ts';
import type { RemediationOutcome } from '../contract/outcome.ts';
import { isConnectionError } from '../db/index.ts';
import { arrivalRules } from '../config/index.ts';
import { authenticate, decideArrival, isRequestId } from '../decide/index.ts';
import type { PipelineContext } from './context.ts';
import type { Answer, Chunk, Partition } from './partition.ts';

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
 * dead-letter), decide each record (decide/arrival.ts), make the whole chunk durable in one
 * statement, and only then apply it to the partition and publish the answers. Resolves once the
 * chunk is durable, with `delivered`: the answers decided on arrival are on the outcomes topic (and
 * dead letters and re-routed records on theirs). Those answers have no outbox flag, so the caller
 * commits the chunk's offset only once `delivered` resolves; a record redelivered before that is
 * answered again from what is stored.
 *
 * A record PostgreSQL refuses (whatever validation missed) must not hold the partition up: the
 * chunk is bisected until the refused records are isolated, they are dead-lettered and answered
 * REJECTED_INVALID, and the rest of the chunk is decided again without them.
 */
export async function takeChunk(ctx: IntakeContext, part: Partition, chunk: ChunkInput): Promise<{ delivered: Promise<void> }> {
  const deliveries: Array<Promise<void>> = [];
  const decoded = await decodeAll(ctx, chunk);
  let remaining = decoded;
  for (;;) {
    const result = await decideChunk(ctx, part, chunk, remaining);
    if (result.kind === 'durable') {
      deliveries.push(result.delivered);
      break;
    }
    const refused = result.refused;
    const offsets = new Set(refused.map((r) => r.arrival.offset));
    ctx.log.warn({ partition: chunk.partition, offsets: [...offsets] }, 'PostgreSQL refused records of a chunk: dead-lettered, the rest decided again');
    const rows: DeadLetterRow[] = [];
    const records: SideRecord[] = [];
    const answers: RemediationOutcome[] = [];
    for (const { arrival, message, error } of refused) {
      deadLetter(chunk, message, new ArbiterError('INVALID_REQUEST', `the audit store refused the record: ${error}`), rows, records);
      const decision: FinalDecision = { status: 'REJECTED_INVALID', rule: 'validate', detail: `the record cannot be stored: ${error}` };
      answers.push(toOutcome(arrival.request, arrival.scope, decision, ctx.workerId, Date.now()));
    }
    await ctx.audit.recordArrivals({ arrivals: [], deadLetters: rows });
    for (const d of rows) ctx.metrics.deadLetters.inc({ code: d.errorCode });
    deliveries.push(ctx.producer.send({ topic: ctx.topics.deadLetter, acks: -1, messages: records }).then(() => ctx.publisher.deliver(answers, ctx.shutdown)));
    remaining = remaining.filter((d) => !offsets.has(d.message.offset));
  }
  const delivered = Promise.all(deliveries).then(() => undefined);
  // Awaited by the caller before the offset commit; never an unhandled rejection meanwhile.
  delivered.catch(() => undefined);
  return { delivered };
}

interface Refused {
  arrival: ArrivalRow;
  message: KafkaMessage;
  error: string;
}

type ChunkResult = { kind: 'durable'; delivered: Promise<void> } | { kind: 'refused'; refused: Refused[] };

/**
 * Decides and records one chunk. Decided first as if every record were new: the write itself tells
 * whether some were decided before (a redelivery after a crash or a rebalance, or a reused id), and
 * then writes nothing, and the chunk is decided again knowing them.
 */
async function decideChunk(ctx: IntakeContext, part: Partition, chunk: ChunkInput, decoded: Decoded[]): Promise<ChunkResult> {
  const known = new Map<string, KnownRequest>();
  for (let attempt = 1; ; attempt++) {
    const decided = decideRecords(ctx, part, chunk, decoded, known);
    let write: ArrivalWrite;
    try {
      write = await ctx.audit.recordArrivals({ arrivals: decided.arrivals, deadLetters: decided.deadLetters });
    } catch (error) {
      if (isConnectionError(error)) throw error;
      const refused = await isolateRefused(ctx, decided.arrivals);
      if (!refused.length) throw error; // not a record's fault: the chunk is tried again
      const reason = errorMessage(error);
      const messageAt = new Map(chunk.messages.map((m) => [m.offset, m]));
      return { kind: 'refused', refused: refused.map((arrival) => ({ arrival, message: messageAt.get(arrival.offset)!, error: reason })) };
    }
    if (write.kind === 'written') return { kind: 'durable', delivered: apply(ctx, part, chunk, decided, write.fresh) };
    if (attempt >= 5) throw new Error(`a chunk of partition ${chunk.partition} kept meeting request ids decided concurrently`);
    for (const [id, k] of write.known) known.set(id, k);
    // Redeliveries of requests this partition owns but does not hold (decided by a previous owner
    // after this one recovered the partition) are adopted; another partition's requests never are.
    const strangers = [...write.known].filter(([id, k]) => k.topic === chunk.topic && k.partition === chunk.partition && !part.holds(id)).map(([id]) => id);
    if (strangers.length) part.adopt(await ctx.audit.loadByIds(strangers, chunk.topic, chunk.partition), Date.now());
  }
}

/** An arrival row with the time its chunk was decided (a pending primary's receivedAt). */
type DecidedArrival = ArrivalRow & { receivedAt: number };

interface DecidedChunk {
  now: number;
  state: Chunk;
  arrivals: DecidedArrival[];
  deadLetters: DeadLetterRow[];
  deadLetterRecords: SideRecord[];
  reroutes: SideRecord[];
  /** Answered without working state of their own: no usable id, an id that belongs to another request, or a redelivery told again. */
  stateless: Answer[];
}

/** The pure part: every record's arrival decision, in order, as if `known` were all that was decided before. */
function decideRecords(ctx: IntakeContext, part: Partition, chunk: ChunkInput, decoded: Decoded[], known: ReadonlyMap<string, KnownRequest>): DecidedChunk {
  const now = Date.now();
  const rules = arrivalRules(ctx.config);
  const out: DecidedChunk = {
    now,
    state: part.beginChunk(now),
    arrivals: [],
    deadLetters: [],
    deadLetterRecords: [],
    reroutes: [],
    stateless: [],
  };
  const seen = new Map<string, RemediationRequest>();
  const secretParams = secretParamsOf(ctx.config.actions);
  for (const item of decoded) {
    if (item.kind === 'dead-letter') {
      deadLetter(chunk, item.message, item.error, out.deadLetters, out.deadLetterRecords);
      continue;
    }
    const { request, message } = item;
    const recordKey = message.key?.toString() ?? null;
    const scopeKey = recordKey ?? '';
    if (!isRequestId(request.requestId)) {
      // No request id to key its working state by: kept as a dead letter, and answered by the id it gave.
      deadLetter(chunk, message, new ArbiterError('INVALID_REQUEST', 'requestId is not a UUID'), out.deadLetters, out.deadLetterRecords);
      out.stateless.push({ request, scope: scopeKey, decision: { status: 'REJECTED_INVALID', rule: 'validate', detail: 'requestId is not a UUID' } });
      continue;
    }
    const before = known.get(request.requestId);
    const earlier = before?.request ?? (seen.has(request.requestId) ? storableRequest(seen.get(request.requestId)!) : undefined);
    if (earlier) {
      if (isSameRequest(earlier, request, secretParams[request.action])) {
        // A redelivery: decided already. Told again if its answer is due (it may never have reached Kafka).
        if (before?.answer) out.stateless.push({ request, scope: scopeKey, decision: before.answer });
        continue;
      }
      // The id is taken by another request: this one is refused, kept as a dead letter, and answered.
      const detail = `requestId ${request.requestId} was already used for a different request; use a new id for each request`;
      deadLetter(chunk, message, new ArbiterError('DUPLICATE_REQUEST_ID', detail), out.deadLetters, out.deadLetterRecords);
      out.stateless.push({ request, scope: scopeKey, decision: { status: 'REJECTED_DUPLICATE_ID', rule: 'idempotency', detail } });
      continue;
    }
    seen.set(request.requestId, request);
    const signature = headerText(message, SIGNATURE_HEADER);
    const authentication = authenticate(request, message.value, signature, ctx.config.compiled.signatures, now);
    const arrival = decideArrival(request, recordKey, out.state.view, rules, now, authentication);
    out.state.note(request.requestId, arrival.coalesceKey, arrival.decision);
    const rerouted = headerText(message, HEADERS.reroutedFrom);
    out.arrivals.push({
      request,
      ...arrival,
      topic: chunk.topic,
      partition: chunk.partition,
      offset: message.offset,
      reroutedFrom: rerouted === undefined ? null : Number(rerouted),
      latencyMs: now - Number(message.timestamp),
      receivedAt: now,
    });
    if (arrival.decision.status === 'REROUTED') {
      out.reroutes.push({
        partition: arrival.decision.toPartition,
        key: arrival.scope,
        value: message.value,
        headers: {
          [HEADERS.reroutedFrom]: String(chunk.partition),
          'arbiter-original-key': message.key?.toString() ?? '',
          // The signature covers the value, which moves unchanged: its owner verifies it again.
          ...(signature !== undefined ? { [SIGNATURE_HEADER]: signature } : {}),
        },
      });
    }
  }
  return out;
}

/**
 * The chunk is durable: now memory and metrics change, and agents are told. Returns the delivery
 * of what must reach Kafka before the offset commit: side records and the answers decided now.
 */
function apply(ctx: IntakeContext, part: Partition, chunk: ChunkInput, decided: DecidedChunk, fresh: ReadonlySet<string>): Promise<void> {
  const { now, arrivals } = decided;
  const durableAt = Date.now();
  for (const d of decided.deadLetters) ctx.metrics.deadLetters.inc({ code: d.errorCode });
  const applied = arrivals.filter((a) => a.decision.status === 'REROUTED' || fresh.has(a.request.requestId));
  // Counted per chunk, not per record: a labelled increment costs about what deciding a duplicate does.
  const counts = new Map<DecisionStatus, Map<string, number>>();
  for (const a of applied) {
    ctx.metrics.decisionLatency.observe((durableAt - now + (a.latencyMs ?? 0)) / 1000);
    let byAction = counts.get(a.decision.status);
    if (!byAction) counts.set(a.decision.status, (byAction = new Map()));
    byAction.set(a.request.action, (byAction.get(a.request.action) ?? 0) + 1);
  }
  for (const [status, byAction] of counts) {
    for (const [action, n] of byAction) {
      ctx.metrics.countDecision(status, action, n);
      if (status === 'REROUTED') ctx.metrics.rerouted.inc(n);
      if (status === 'COALESCED') ctx.metrics.countCoalesced(action, n);
    }
  }
  const owned = applied.filter((a) => a.decision.status !== 'REROUTED');
  const late = part.accept(decided.state, owned, chunk.messages[chunk.messages.length - 1]?.offset ?? null);
  const outcomes: RemediationOutcome[] = [];
  for (const a of owned) {
    // An in-flight follower is answered when its primary ends.
    if (isFinal(a.decision) && !(a.decision.status === 'COALESCED' && a.decision.inFlight)) outcomes.push(toOutcome(a.request, a.scope, a.decision, ctx.workerId, now));
  }
  for (const a of late) outcomes.push(toOutcome(a.request, a.scope, a.decision, ctx.workerId, durableAt));
  for (const u of decided.stateless) outcomes.push(toOutcome(u.request, u.scope, u.decision, ctx.workerId, durableAt));
  // Side records and answers in parallel; the next chunk is decided meanwhile (the caller awaits
  // this only before committing the offset).
  return Promise.all([
    decided.deadLetterRecords.length && ctx.producer.send({ topic: ctx.topics.deadLetter, acks: -1, messages: decided.deadLetterRecords }),
    decided.reroutes.length && ctx.producer.send({ topic: ctx.topics.requests, acks: -1, messages: decided.reroutes }),
    ctx.publisher.deliver(outcomes, ctx.shutdown),
  ]).then(() => undefined);
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

/** A registry outage throws (retryable: the chunk is fetched again, nothing is dead-lettered). */
async function decodeAll(ctx: IntakeContext, chunk: ChunkInput): Promise<Decoded[]> {
  const decoded = await ctx.serde.decodeRequests(chunk.messages.map((m) => m.value));
  return chunk.messages.map((message, i): Decoded => {
    const d = decoded[i]!;
    if (d instanceof ArbiterError) return { kind: 'dead-letter', message, error: d };
    try {
      return { kind: 'request', request: normalizeIds(d), message };
    } catch (error) {
      return { kind: 'dead-letter', message, error: new ArbiterError('DECODE_FAILED', errorMessage(error), { cause: error }) };
    }
  });
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
