import { preparedName, type Pool, type PoolClient } from '../db/index.ts';
import { followerDecision, isFinal, type FinalDecision } from '../contract/decision.ts';
import { paramCount, type RemediationRequest } from '../contract/request.ts';
import type { ArrivalRow, DeadLetterRow } from './rows.ts';
import { storableRequest, storableText } from './storable.ts';
import { redactParams, type SecretParams } from './secret-params.ts';
import { storedDecision } from './stored.ts';

/** A request id of the chunk that was decided before (a redelivery, or an id reused). */
export interface KnownRequest {
  /** The partition that owns it. */
  topic: string;
  partition: number;
  /** As stored, to tell a redelivery from a reused id (see isSameRequest; a duplicate's secret params are stored redacted). */
  request: RemediationRequest;
  /** What its agent was told, to tell it again; null while it (or its primary) is still open. */
  answer: FinalDecision | null;
}

/**
 * What one arrival write did: either the chunk is durable (`fresh`: the request ids written, as
 * opposed to a concurrent owner's; re-routed ones are not among them), or nothing was written because some ids were decided before.
 */
export type ArrivalWrite = { kind: 'written'; fresh: Set<string> } | { kind: 'known'; known: Map<string, KnownRequest> };

/**
 * One chunk's arrival decisions in ONE statement, so one round trip and no BEGIN/COMMIT:
 *  - written optimistically, as if no id of the chunk were stored already: the unique indexes (and,
 *    across request_state and duplicates, a look-up that spares the duplicates' index for the
 *    duplicates themselves) find one that is, and the statement then fails as a whole
 *    (unique_violation, or arbiter.refuse_known_arrivals' AR409), so nothing of it stays. The chunk is then
 *    written again with the redelivery check folded in: if any id is known, nothing is written and
 *    the known ids come back (the worker decides the chunk again without them — rare: after a
 *    crash or a rebalance, or an id an agent reused). Checking every id in both tables first cost
 *    ~1.8 µs of PostgreSQL per request more (docs/BENCHMARKS.md, issue 12 sixth pass);
 *  - a coalesced duplicate is one narrow row of arbiter.duplicates;
 *  - every other request is a working-state row (request_state), the request (request_log) and
 *    its decision (decision_log), as before; re-routed records only their REROUTED decision;
 *  - an outcome decided now is published before the offset commit, so it never enters the outbox:
 *    only an ACCEPTED primary's answer (decided later) does, when it is finalized.
 * Data-modifying CTEs share one snapshot and one implicit transaction: all or nothing. Inside a
 * transaction of the caller's (`checked`), the check comes first: a failed statement would end it.
 */
export async function writeArrivals(
  db: Pool | PoolClient,
  workerId: string,
  batch: { arrivals: readonly ArrivalRow[]; deadLetters: readonly DeadLetterRow[] },
  secret: SecretParams = {},
  mode: 'optimistic' | 'checked' = 'optimistic',
): Promise<ArrivalWrite> {
  if (!batch.arrivals.length && !batch.deadLetters.length) return { kind: 'written', fresh: new Set() };
  const duplicates: ArrivalRow[] = [];
  const full: ArrivalRow[] = [];
  for (const a of batch.arrivals) (a.decision.status === 'COALESCED' ? duplicates : full).push(a);
  const ids = batch.arrivals.map((a) => a.request.requestId);
  const has = { full: full.length > 0, duplicates: duplicates.length > 0, deadLetters: batch.deadLetters.length > 0 };
  const values = [
    ids,
    workerId,
    ...(has.full ? fullColumns(full, secret) : []),
    ...(has.duplicates ? duplicateColumns(duplicates, secret) : []),
    ...(has.deadLetters ? deadLetterColumns(batch.deadLetters) : []),
  ];
  // The optimistic statement is prepared (see arrivalStatement), the checked one, a fallback, is not.
  if (mode === 'optimistic') {
    try {
      const { name, text } = arrivalStatement(has, 'optimistic');
      await db.query({ name, text, values });
      const fresh = new Set<string>();
      for (const a of batch.arrivals) if (a.decision.status !== 'REROUTED') fresh.add(a.request.requestId);
      return { kind: 'written', fresh };
    } catch (error) {
      if (!ARRIVAL_KNOWN.has((error as { code?: string }).code ?? '')) throw error;
    }
  }
  const { rows } = await db.query(arrivalStatement(has, 'checked').text, values);
  const known = new Map<string, KnownRequest>();
  const taken = new Set<string>();
  for (const r of rows) {
    if (r.kind === 'taken') taken.add(r.request_id as string);
    else known.set(r.request_id as string, knownRequest(r.info as KnownRow));
  }
  if (known.size) return { kind: 'known', known };
  const fresh = new Set<string>();
  for (const a of batch.arrivals) if (a.decision.status !== 'REROUTED' && !taken.has(a.request.requestId)) fresh.add(a.request.requestId);
  return { kind: 'written', fresh };
}

const FULL_COLUMNS = `request_id uuid, agent_id text, resource_arn text, scope text, action text, status text, rule text, final boolean,
  primary_request_id uuid, resource_version bigint, fencing_token bigint, detail text, latency_ms float8, coalesce_key text,
  request jsonb, params jsonb, expected_version bigint, depends_on jsonb, plan_id text, step int, deadline float8, reason text,
  incident_id text, requested_at float8, topic text, kafka_partition int, kafka_offset bigint, rerouted_from int, rerouted boolean`;

const DUPLICATE_COLUMNS = `request_id uuid, primary_request_id uuid, in_flight boolean, agent_id text, resource_arn text, scope text,
  action text, requested_at float8, topic text, kafka_partition int, kafka_offset bigint, latency_ms float8, reason text, incident_id text,
  extra jsonb`;

/** Typed unnest() of the parameters from `first` on, one array per column. */
function unnest(columns: string, first: number): string {
  const defs = columns.split(',').map((c) => c.trim().split(/\s+/));
  const args = defs.map(([, type], i) => `$${first + i}::${type}[]`).join(', ');
  return `unnest(${args}) AS u(${defs.map(([name]) => name).join(', ')})`;
}

const ms = (column: string) => `CASE WHEN ${column} IS NOT NULL THEN to_timestamp(${column} / 1000.0) END`;
const DEAD_LETTER_COLUMNS = 'topic text, kafka_partition int, kafka_offset bigint, record_key bytea, record_value bytea, headers jsonb, error_code text, error text';
const columnCount = (columns: string) => columns.split(',').length;

const KNOWN = `known AS (
  SELECT s.request_id, s.topic, s.kafka_partition AS partition, s.request AS stored, NULL::jsonb AS narrow,
         s.final, s.status, s.rule, s.detail, s.primary_request_id, s.resource_version, s.fencing_token,
         p.final AS p_final, p.status AS p_status, p.rule AS p_rule, p.detail AS p_detail,
         p.resource_version AS p_resource_version, p.fencing_token AS p_fencing_token
    FROM arbiter.request_state s LEFT JOIN arbiter.request_state p ON p.request_id = s.primary_request_id
   WHERE s.request_id = ANY($1::uuid[])
  UNION ALL
  SELECT d.request_id, d.topic, d.kafka_partition, NULL, to_jsonb(d), true, 'COALESCED', 'coalesce', NULL, d.primary_request_id, NULL, NULL,
         p.final, p.status, p.rule, p.detail, p.resource_version, p.fencing_token
    FROM arbiter.duplicates d LEFT JOIN arbiter.request_state p ON p.request_id = d.primary_request_id
   WHERE d.request_id = ANY($1::uuid[])
),
go AS (SELECT NOT EXISTS (SELECT 1 FROM known) AS ok)`;

/** Requests with working state of their own, their log rows and decisions; re-routed records only their decision. */
const fullParts = (first: number, skipStored: string) => `
f AS (SELECT * FROM ${unnest(FULL_COLUMNS, first)} WHERE (SELECT ok FROM go)),
state AS (
  INSERT INTO arbiter.request_state (request_id, scope, topic, kafka_partition, resource_arn, action, agent_id, coalesce_key, status, rule,
                                     final, primary_request_id, resource_version, fencing_token, detail, request, finished_at)
  SELECT request_id, scope, topic, kafka_partition, resource_arn, action, agent_id, coalesce_key, status, rule,
         final, primary_request_id, resource_version, fencing_token, detail, request, CASE WHEN final THEN now() END
    FROM f WHERE NOT rerouted
  ${skipStored}
  RETURNING request_id
),
log AS (
  INSERT INTO arbiter.request_log (request_id, agent_id, resource_arn, scope, action, params, expected_version, depends_on, plan_id, step,
                                   deadline, reason, incident_id, requested_at, topic, kafka_partition, kafka_offset, rerouted_from)
  SELECT f.request_id, agent_id, resource_arn, scope, action, params, expected_version, ARRAY(SELECT jsonb_array_elements_text(depends_on)),
         plan_id, step, ${ms('deadline')}, reason, incident_id, ${ms('requested_at')}, topic, kafka_partition, kafka_offset, rerouted_from
    FROM f JOIN state USING (request_id)
),
decided AS (
  INSERT INTO arbiter.decision_log (request_id, agent_id, resource_arn, scope, action, status, final, primary_request_id,
                                    resource_version, fencing_token, detail, latency_ms, rule, worker_id)
  SELECT request_id, agent_id, resource_arn, scope, action, status, final, primary_request_id,
         resource_version, fencing_token, detail, latency_ms, rule, $2::text
    FROM f WHERE rerouted OR request_id IN (SELECT request_id FROM state)
)`;

const duplicateParts = (first: number, skipStored: string) => `
dups AS (
  INSERT INTO arbiter.duplicates (request_id, primary_request_id, in_flight, agent_id, resource_arn, scope, action, requested_at, topic,
                                  kafka_partition, kafka_offset, latency_ms, worker_id, params, expected_version, depends_on, plan_id, step,
                                  deadline, reason, incident_id, rerouted_from)
  SELECT request_id, primary_request_id, in_flight, agent_id, resource_arn, scope, action, to_timestamp(requested_at / 1000.0), topic,
         kafka_partition, kafka_offset, latency_ms, $2::text, extra->'params', (extra->>'expectedVersion')::bigint,
         CASE WHEN extra ? 'dependsOn' THEN ARRAY(SELECT jsonb_array_elements_text(extra->'dependsOn')) END,
         extra->>'planId', (extra->>'step')::int, ${ms("(extra->>'deadline')::float8")}, reason, incident_id,
         (extra->>'reroutedFrom')::int
    FROM ${unnest(DUPLICATE_COLUMNS, first)}
   WHERE (SELECT ok FROM go)
  ${skipStored}
  RETURNING request_id
)`;

const deadLetterParts = (first: number) => `
dead AS (
  INSERT INTO arbiter.dead_letters (topic, kafka_partition, kafka_offset, record_key, record_value, headers, error_code, error, worker_id)
  SELECT topic, kafka_partition, kafka_offset, record_key, record_value, headers, error_code, error, $2::text
    FROM ${unnest(DEAD_LETTER_COLUMNS, first)}
   WHERE (SELECT ok FROM go)
  ON CONFLICT DO NOTHING
)`;

/** Each shape's statement, and the name the optimistic one is prepared under. */
const statements = new Map<string, { text: string; name: string }>();

/**
 * What fails the optimistic statement when an id of the chunk is stored already: a unique index
 * (unique_violation), or arbiter.refuse_known_arrivals for an id stored in the other table
 * (migrations/0013_optimistic-arrivals.sql).
 */
const ARRIVAL_KNOWN = new Set(['23505', 'AR409']);

/**
 * The statement for a chunk with these kinds of rows: only the parts it needs, since planning the
 * whole statement cost PostgreSQL ~1 ms, and a storm's chunks are mostly duplicates alone.
 * Parameters: $1 every id, $2 the worker, then each present part's columns in this order.
 */
function arrivalStatement(has: { full: boolean; duplicates: boolean; deadLetters: boolean }, mode: 'optimistic' | 'checked'): { text: string; name: string } {
  const key = `${mode}${Number(has.full)}${Number(has.duplicates)}${Number(has.deadLetters)}`;
  const known = statements.get(key);
  if (known) return known;
  let sql: string;
  const parts = [mode === 'checked' ? KNOWN : 'go AS (SELECT true AS ok)'];
  // Optimistic: a plain INSERT, which a stored id fails (unique_violation). ON CONFLICT DO NOTHING
  // made every row a speculative insertion, confirmed by a WAL record of its own: ~2.5 µs more
  // PostgreSQL CPU per duplicate (docs/BENCHMARKS.md, issue 12 twelfth pass). Checked: a
  // concurrent owner's row is skipped, and reported as taken.
  const skipStored = mode === 'checked' ? 'ON CONFLICT (request_id) DO NOTHING' : '';
  // What each part wrote. Checked: ids written by a concurrent owner instead (ON CONFLICT skipped
  // them) come back as 'taken', so the usual answer is no rows at all rather than every id.
  const written = [];
  let next = 3;
  if (has.full) {
    parts.push(fullParts(next, skipStored));
    next += columnCount(FULL_COLUMNS);
    written.push('SELECT request_id FROM state', 'SELECT request_id FROM f WHERE rerouted');
  }
  if (has.duplicates) {
    parts.push(duplicateParts(next, skipStored));
    next += columnCount(DUPLICATE_COLUMNS);
    written.push('SELECT request_id FROM dups');
  }
  if (has.deadLetters) parts.push(deadLetterParts(next));
  if (mode === 'optimistic') {
    // Every id of the chunk is new, or the statement fails. Within a table, the unique index finds
    // an id stored already. Across the two tables, where a request id must also be unique (a
    // redelivered primary decided a duplicate now, an agent reusing an id), the ids are looked up:
    // all of them in request_state, which holds only primaries and rejections, but only the few
    // full rows' in duplicates, the table of a storm's million rows. (The lookups see the tables as
    // they were before this statement: its own rows do not count.)
    const elsewhere = [
      '(SELECT count(*) FROM arbiter.request_state s WHERE s.request_id = ANY($1::uuid[]))',
      ...(has.full ? ['(SELECT count(*) FROM arbiter.duplicates d WHERE d.request_id IN (SELECT request_id FROM f))'] : []),
    ].join(' + ');
    // Prepared (writeArrivals names it), on every pool: planning this statement cost PostgreSQL ~350 µs,
    // more than running it for a chunk of 5 (640 against 290 µs in all), and the generic plan was
    // as fast as a custom one for chunks of 1,000, also after small chunks had made it generic.
    sql = `WITH ${parts.join(',')}\nSELECT arbiter.refuse_known_arrivals(${elsewhere}) AS ok`;
  } else {
    const taken = written.length
      ? [`SELECT 'taken' AS kind, id AS request_id, NULL::jsonb AS info FROM unnest($1::uuid[]) AS id
   WHERE (SELECT ok FROM go) AND id NOT IN (${written.join(' UNION ALL ')})`]
      : [];
    sql = `WITH ${parts.join(',')}\n${[...taken, `SELECT 'known' AS kind, request_id, to_jsonb(k) AS info FROM known k`].join('\nUNION ALL ')}`;
  }
  const statement = { text: sql, name: preparedName(sql) };
  statements.set(key, statement);
  return statement;
}

function fullColumns(rows: readonly ArrivalRow[], secret: SecretParams): unknown[][] {
  const stored = rows.map((a) => ({ a, r: storableRequest(a.request) }));
  const col = <T>(f: (x: { a: ArrivalRow; r: RemediationRequest }) => T) => stored.map(f);
  return [
    col(({ r }) => r.requestId),
    col(({ r }) => r.agentId),
    col(({ r }) => r.resourceArn),
    col(({ a }) => storableText(a.scope, 4_096)),
    col(({ r }) => r.action),
    col(({ a }) => a.decision.status),
    col(({ a }) => a.decision.rule),
    col(({ a }) => isFinal(a.decision)),
    col(({ a }) => a.decision.primaryRequestId ?? null),
    col(({ a }) => a.decision.resourceVersion ?? null),
    col(({ a }) => a.decision.fencingToken ?? null),
    col(({ a }) => storableText(a.decision.detail)),
    col(({ a }) => a.latencyMs ?? null),
    col(({ a }) => a.coalesceKey),
    col(({ r }) => JSON.stringify(r)),
    col(({ r }) => JSON.stringify(redactParams(r.params, secret[r.action]))),
    col(({ r }) => r.expectedVersion),
    col(({ r }) => JSON.stringify(r.dependsOn)),
    col(({ r }) => r.planId),
    col(({ r }) => r.step),
    col(({ r }) => r.deadline),
    col(({ r }) => r.reason),
    col(({ r }) => r.incidentId),
    col(({ r }) => r.requestedAt),
    col(({ a }) => a.topic),
    col(({ a }) => a.partition),
    col(({ a }) => a.offset),
    col(({ a }) => a.reroutedFrom),
    col(({ a }) => a.decision.status === 'REROUTED'),
  ];
}

/**
 * The narrow row's columns. Fields agents rarely set travel in one JSON value that is NULL when
 * none is set, so a storm's duplicates send (and PostgreSQL parses) no column of NULLs. A reason and
 * an incident id are set by most agents in a storm, so they have columns of their own: in the JSON
 * value they made PostgreSQL parse a jsonb per duplicate, and the worker quote it into the array.
 */
function duplicateColumns(rows: readonly ArrivalRow[], secret: SecretParams): unknown[][] {
  const stored = rows.map((a) => ({ a, r: storableRequest(a.request) }));
  const col = <T>(f: (x: { a: ArrivalRow; r: RemediationRequest }) => T) => stored.map(f);
  return [
    col(({ r }) => r.requestId),
    col(({ a }) => a.decision.primaryRequestId),
    col(({ a }) => a.decision.status === 'COALESCED' && a.decision.inFlight === true),
    col(({ r }) => r.agentId),
    col(({ r }) => r.resourceArn),
    col(({ a }) => storableText(a.scope, 4_096)),
    col(({ r }) => r.action),
    col(({ r }) => r.requestedAt),
    col(({ a }) => a.topic),
    col(({ a }) => a.partition),
    col(({ a }) => a.offset),
    col(({ a }) => a.latencyMs ?? null),
    col(({ r }) => r.reason),
    col(({ r }) => r.incidentId),
    col(({ a, r }) => rarelySet(r, a.reroutedFrom, secret)),
  ];
}

function rarelySet(r: RemediationRequest, reroutedFrom: number | null, secret: SecretParams): string | null {
  // Nearly always none is set: no object is made for that case.
  const hasParams = paramCount(r.params) > 0;
  if (!hasParams && r.expectedVersion === null && !r.dependsOn.length && r.planId === null && r.step === null && r.deadline === null && reroutedFrom === null) {
    return null;
  }
  const extra: Record<string, unknown> = {};
  if (hasParams) extra.params = redactParams(r.params, secret[r.action]);
  if (r.expectedVersion !== null) extra.expectedVersion = r.expectedVersion;
  if (r.dependsOn.length) extra.dependsOn = r.dependsOn;
  if (r.planId !== null) extra.planId = r.planId;
  if (r.step !== null) extra.step = r.step;
  if (r.deadline !== null) extra.deadline = r.deadline;
  if (reroutedFrom !== null) extra.reroutedFrom = reroutedFrom;
  return JSON.stringify(extra);
}

function deadLetterColumns(rows: readonly DeadLetterRow[]): unknown[][] {
  const col = <T>(f: (r: DeadLetterRow) => T) => rows.map(f);
  return [
    col((r) => r.topic),
    col((r) => r.partition),
    col((r) => r.offset),
    col((r) => r.key),
    col((r) => r.value),
    col((r) => JSON.stringify(r.headers)),
    col((r) => r.errorCode),
    col((r) => storableText(r.error)),
  ];
}

interface KnownRow {
  request_id: string;
  topic: string;
  partition: number;
  stored: RemediationRequest | null;
  narrow: Record<string, unknown> | null;
  final: boolean;
  status: string;
  rule: string | null;
  detail: string | null;
  primary_request_id: string | null;
  resource_version: number | null;
  fencing_token: number | null;
  p_final: boolean | null;
  p_status: string | null;
  p_rule: string | null;
  p_detail: string | null;
  p_resource_version: number | null;
  p_fencing_token: number | null;
}

function knownRequest(k: KnownRow): KnownRequest {
  const primary = k.p_final
    ? storedDecision({
        final: true,
        status: k.p_status,
        rule: k.p_rule,
        detail: k.p_detail,
        primary_request_id: null,
        resource_version: k.p_resource_version,
        fencing_token: k.p_fencing_token,
      })
    : null;
  const answer =
    k.status === 'COALESCED' ? (primary && k.primary_request_id ? followerDecision(k.primary_request_id, primary) : null) : k.final ? storedDecision(k as unknown as Record<string, unknown>) : null;
  return { topic: k.topic, partition: k.partition, request: k.stored ?? requestOfDuplicate(k.narrow!), answer };
}

/** A duplicate's request, rebuilt from its narrow row (to_jsonb of arbiter.duplicates) as storableRequest would have it. */
export function requestOfDuplicate(d: Record<string, unknown>): RemediationRequest {
  const time = (v: unknown) => (v === null || v === undefined ? null : Date.parse(v as string));
  return {
    requestId: d.request_id as string,
    agentId: d.agent_id as string,
    resourceArn: d.resource_arn as string,
    action: d.action as string,
    params: (d.params as Record<string, string> | null) ?? {},
    expectedVersion: d.expected_version === null || d.expected_version === undefined ? null : Number(d.expected_version),
    dependsOn: (d.depends_on as string[] | null) ?? [],
    planId: (d.plan_id as string | null) ?? null,
    step: (d.step as number | null) ?? null,
    deadline: time(d.deadline),
    reason: (d.reason as string | null) ?? null,
    incidentId: (d.incident_id as string | null) ?? null,
    requestedAt: time(d.requested_at) ?? 0,
  };
}
