import { beforeAll, describe, expect, it } from 'vitest';
import { AuditStore } from '../../src/audit/index.ts';
import { coalesceKey } from '../../src/coalesce/index.ts';
import { buildRequest, type RemediationRequest } from '../../src/contract/request.ts';
import { ArbiterError } from '../../src/contract/errors.ts';
import { createPool, isConnectionError, isPoolExhausted } from '../../src/db/index.ts';
import { decideOnError } from '../../src/decide/index.ts';
import { LockStore } from '../../src/locks/index.ts';
import { deploymentArn, podArn } from '../../tools/fleet/index.ts';
import { migratedDatabase } from '../support/harness.ts';

/**
 * An execution's lease and audit writes are one round trip each (issue 12): taking the lock, the
 * 'started' phase with its checks, the final decision with its execution row and the resource's new
 * version. These tests count the statements sent and check each one still does all it did as a
 * transaction of several: nothing written twice, nothing written by a second owner.
 */
describe('an execution in few round trips (acquire_lock, beginExecution, finalize)', () => {
  const { databaseUrl, pool } = migratedDatabase('arbiter_exec', 4);
  let sent: string[] = [];
  const scope = deploymentArn('exec', 'api');

  beforeAll(() => {
    const query = pool.query.bind(pool) as (...args: unknown[]) => unknown;
    (pool as unknown as { query: (...args: unknown[]) => unknown }).query = (...args: unknown[]) => {
      sent.push(String(args[0]));
      return query(...args);
    };
  });

  const arrive = async (audit: AuditStore, arn: string) => {
    const request = buildRequest({ agentId: 'agent-exec', resourceArn: arn, action: 'restart' });
    const decision = { status: 'ACCEPTED' as const, rule: 'accept' as const, notBefore: Date.now(), detail: 'accepted' };
    await audit.recordArrivals({
      arrivals: [{ request, scope, topic: 'exec.requests', partition: 0, offset: '0', reroutedFrom: null, coalesceKey: coalesceKey(arn, 'restart', {}), decision }],
      deadLetters: [],
    });
    return request;
  };
  const count = async (sql: string, ...values: unknown[]) => (await pool.query(sql, values)).rows[0].n as number;

  it('a lease is one statement; contenders racing for it: exactly one wins, tokens only grow, every attempt in the lock log', async () => {
    const locks = new LockStore(pool);
    const arn = podArn(scope, 'api', 0);
    sent = [];
    const first = await locks.acquire({ resourceArn: arn, owner: 'worker:a', agentId: 'a', ttlMs: 60_000 });
    expect(sent).toHaveLength(1);
    expect(first).toMatchObject({ acquired: true, fencingToken: 1 });
    const refused = await locks.acquire({ resourceArn: arn, owner: 'worker:b', agentId: 'b', ttlMs: 60_000 });
    expect(refused).toMatchObject({ acquired: false, holder: { owner: 'worker:a', agentId: 'a', fencingToken: 1 } });
    expect(await locks.release({ resourceArn: arn, owner: 'worker:a', fencingToken: 1 })).toBe(true);

    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => locks.acquire({ resourceArn: arn, owner: `worker:${i}`, agentId: `agent-${i}`, ttlMs: 60_000 })));
    const winners = results.filter((r) => r.acquired);
    expect(winners).toHaveLength(1);
    expect(winners[0]).toMatchObject({ fencingToken: 2 });
    expect(await count(`SELECT count(*)::int AS n FROM arbiter.lock_events WHERE resource_arn = $1 AND event = 'acquired'`, arn)).toBe(2);
    expect(await count(`SELECT count(*)::int AS n FROM arbiter.lock_events WHERE resource_arn = $1 AND event = 'acquire_failed'`, arn)).toBe(20);
  });

  it('leases of many resources asked for at once share a statement: each caller gets its own token, or its own holder', async () => {
    const locks = new LockStore(pool);
    const arns = Array.from({ length: 20 }, (_, i) => podArn(scope, 'api', 300 + i));
    await locks.acquire({ resourceArn: arns[5]!, owner: 'agent:other', agentId: 'other', ttlMs: 60_000 });
    sent = [];
    const results = await Promise.all(arns.map((resourceArn) => locks.acquire({ resourceArn, owner: 'worker:w', agentId: 'w', ttlMs: 60_000 })));
    expect(sent.length).toBeLessThanOrEqual(3);
    expect(results.map((r) => r.acquired)).toEqual(arns.map((_, i) => i !== 5));
    expect(results[5]).toMatchObject({ acquired: false, holder: { owner: 'agent:other', agentId: 'other', fencingToken: 1 } });
    expect(results.filter((r) => r.acquired).every((r) => r.acquired && r.fencingToken === 1)).toBe(true);
    expect(await count(`SELECT count(*)::int AS n FROM arbiter.lock_events WHERE event = 'acquired' AND resource_arn = ANY($1::text[])`, arns)).toBe(20);
    expect(await count(`SELECT count(*)::int AS n FROM arbiter.lock_events WHERE event = 'acquire_failed' AND resource_arn = ANY($1::text[])`, arns)).toBe(1);
  });

  it('a lease that expired unreleased is taken over in the same statement, its expiry recorded once', async () => {
    const expired: string[] = [];
    const locks = new LockStore(pool, { expired: (l) => expired.push(`${l.owner}:${l.fencingToken}`) });
    const arn = podArn(scope, 'api', 1);
    await locks.acquire({ resourceArn: arn, owner: 'worker:a', ttlMs: 50 });
    await new Promise((resolve) => setTimeout(resolve, 120));
    sent = [];
    expect(await locks.acquire({ resourceArn: arn, owner: 'worker:b', ttlMs: 60_000 })).toMatchObject({ acquired: true, fencingToken: 2 });
    expect(sent).toHaveLength(1);
    expect(expired).toEqual(['worker:a:1']);
    expect(await count(`SELECT count(*)::int AS n FROM arbiter.lock_events WHERE resource_arn = $1 AND event = 'expired'`, arn)).toBe(1);
  });

  it("'started' and the final decision: one statement each; a second owner's writes change nothing", async () => {
    const audit = new AuditStore(pool, 'worker-exec');
    const arn = podArn(scope, 'api', 2);
    const request = await arrive(audit, arn);
    const base = { requestId: request.requestId, resourceArn: arn, scope, action: 'restart', agentId: 'agent-exec', fencingToken: 7, resourceVersion: null, detail: null };

    sent = [];
    expect(await audit.beginExecution({ ...base, phase: 'started' })).toEqual({ final: null, started: false, recorded: true });
    expect(sent).toHaveLength(1);
    // Ever started: the caller must look at the resource first, so nothing is recorded.
    expect(await audit.beginExecution({ ...base, phase: 'started' })).toEqual({ final: null, started: true, recorded: false });

    const executed = { status: 'EXECUTED' as const, rule: 'execute' as const, resourceVersion: 5, fencingToken: 7, detail: 'done' };
    const finish = (version: number) =>
      audit.finalize({
        decided: { request, scope, decision: { ...executed, resourceVersion: version }, latencyMs: 12 },
        execution: { ...base, phase: 'succeeded', resourceVersion: version, detail: 'done' },
        resource: { arn, scope, version, expectedState: { restarted: true }, requestId: request.requestId, action: 'restart', agentId: 'agent-exec' },
      });
    sent = [];
    expect(await finish(5)).toBe(true);
    expect(sent).toHaveLength(1);
    // Another owner finishing the same request (with another version) is refused and writes nothing.
    expect(await finish(9)).toBe(false);
    const decisions = (await pool.query('SELECT status, final, resource_version, fencing_token, latency_ms, rule, worker_id FROM arbiter.decisions WHERE request_id = $1 AND final', [request.requestId])).rows;
    expect(decisions).toEqual([{ status: 'EXECUTED', final: true, resource_version: 5, fencing_token: 7, latency_ms: 12, rule: 'execute', worker_id: 'worker-exec' }]);
    expect((await pool.query('SELECT phase FROM arbiter.executions WHERE request_id = $1 ORDER BY at', [request.requestId])).rows.map((r) => r.phase)).toEqual(['started', 'succeeded']);
    expect(await audit.resourceVersion(arn)).toBe(5);
    expect((await pool.query('SELECT status, final, resource_version FROM arbiter.request_state WHERE request_id = $1', [request.requestId])).rows[0]).toEqual({ status: 'EXECUTED', final: true, resource_version: 5 });
    // A final request: beginExecution reports the decision and records nothing.
    const after = await audit.beginExecution({ ...base, phase: 'started' });
    expect(after).toMatchObject({ final: { status: 'EXECUTED', resourceVersion: 5 }, recorded: false });
    expect(await count('SELECT count(*)::int AS n FROM arbiter.executions WHERE request_id = $1', request.requestId)).toBe(2);
  });

  it('primaries ending at the same time share a statement; each is told whether it recorded, and a second end records nothing', async () => {
    const audit = new AuditStore(pool, 'worker-exec');
    const requests: RemediationRequest[] = [];
    for (let i = 0; i < 20; i++) requests.push(await arrive(audit, podArn(scope, 'api', 100 + i)));
    const end = (request: RemediationRequest, version: number) =>
      audit.finalize({
        decided: { request, scope, decision: { status: 'EXECUTED', rule: 'execute', resourceVersion: version, fencingToken: 1, detail: 'done' }, latencyMs: 3 },
        execution: { requestId: request.requestId, resourceArn: request.resourceArn, scope, action: 'restart', agentId: 'agent-exec', phase: 'succeeded', fencingToken: 1, resourceVersion: version, detail: 'done' },
        resource: { arn: request.resourceArn, scope, version, expectedState: { restarted: true }, requestId: request.requestId, action: 'restart', agentId: 'agent-exec' },
      });
    sent = [];
    expect(await Promise.all(requests.map((r) => end(r, 4)))).toEqual(requests.map(() => true));
    // The first goes alone, the rest wait for it and go together (two writers at most).
    expect(sent.length).toBeLessThanOrEqual(3);
    expect(await Promise.all(requests.map((r) => end(r, 9)))).toEqual(requests.map(() => false));
    const ids = requests.map((r) => r.requestId);
    expect(await count('SELECT count(*)::int AS n FROM arbiter.decisions WHERE final AND request_id = ANY($1::uuid[])', ids)).toBe(20);
    expect(await count("SELECT count(*)::int AS n FROM arbiter.executions WHERE phase = 'succeeded' AND request_id = ANY($1::uuid[])", ids)).toBe(20);
    expect(await count('SELECT count(*)::int AS n FROM arbiter.resource_state WHERE version = 4 AND last_request_id = ANY($1::uuid[])', ids)).toBe(20);
  });

  it('leases released and executions started at the same time share statements, each answered for itself', async () => {
    const audit = new AuditStore(pool, 'worker-exec');
    const locks = new LockStore(pool);
    const requests: RemediationRequest[] = [];
    for (let i = 0; i < 20; i++) requests.push(await arrive(audit, podArn(scope, 'api', 200 + i)));
    const leases = await Promise.all(requests.map((r) => locks.acquire({ resourceArn: r.resourceArn, owner: 'worker:w', agentId: r.agentId, ttlMs: 60_000 })));
    const tokens = leases.map((l) => (l.acquired ? l.fencingToken : -1));
    const row = (r: RemediationRequest, i: number) => ({ requestId: r.requestId, resourceArn: r.resourceArn, scope, action: 'restart', agentId: r.agentId, phase: 'started' as const, fencingToken: tokens[i]!, resourceVersion: null, detail: null });
    sent = [];
    const starts = await Promise.all(requests.map((r, i) => audit.beginExecution(row(r, i))));
    expect(starts).toEqual(requests.map(() => ({ final: null, started: false, recorded: true })));
    expect(sent.length).toBeLessThanOrEqual(3);
    expect((await Promise.all(requests.map((r, i) => audit.beginExecution(row(r, i))))).map((x) => [x.started, x.recorded])).toEqual(requests.map(() => [true, false]));
    // One release with a token that is not the holder's: refused, the others released.
    sent = [];
    const released = await Promise.all(requests.map((r, i) => locks.release({ resourceArn: r.resourceArn, owner: 'worker:w', fencingToken: i === 7 ? tokens[i]! + 1 : tokens[i]! })));
    expect(released).toEqual(requests.map((_, i) => i !== 7));
    expect(sent.length).toBeLessThanOrEqual(3);
    const arns = requests.map((r) => r.resourceArn);
    const { rows } = await pool.query("SELECT resource_arn, agent_id FROM arbiter.lock_events WHERE event = 'released' AND resource_arn = ANY($1::text[]) ORDER BY resource_arn", [arns]);
    expect(rows).toHaveLength(19);
    expect(rows.every((r) => r.agent_id === 'agent-exec')).toBe(true);
    expect(await count('SELECT count(*)::int AS n FROM arbiter.locks WHERE owner IS NOT NULL AND resource_arn = ANY($1::text[])', arns)).toBe(1);
  });

  it("the final decision puts the answer in the outbox; publishing takes it out without rewriting the request's row", async () => {
    const audit = new AuditStore(pool, 'worker-exec');
    const arn = podArn(scope, 'api', 4);
    const request = await arrive(audit, arn);
    const inOutbox = () => count('SELECT count(*)::int AS n FROM arbiter.outcome_outbox WHERE request_id = $1', request.requestId);
    const rowVersion = async () => (await pool.query('SELECT ctid::text AS at, xmin::text AS x FROM arbiter.request_state WHERE request_id = $1', [request.requestId])).rows[0];
    // Accepted: open, not in the outbox (nothing to answer yet); a new owner recovers it as open.
    expect(await inOutbox()).toBe(0);
    expect((await audit.loadOpen('exec.requests', [0])).map((r) => r.request.requestId)).toContain(request.requestId);

    const decision = { status: 'EXECUTED' as const, rule: 'execute' as const, resourceVersion: 2, fencingToken: 1, detail: 'done' };
    expect(await audit.finalize({ decided: { request, scope, decision, latencyMs: 4 } })).toBe(true);
    expect(await inOutbox()).toBe(1);
    // Final but unanswered: a new owner republishes it, and the sweep finds it once it is old enough.
    const open = (await audit.loadOpen('exec.requests', [0])).find((r) => r.request.requestId === request.requestId);
    expect(open).toMatchObject({ status: 'EXECUTED', outcomePublished: false });
    expect((await audit.loadUnpublished('exec.requests', 0, 60_000, 100)).map((r) => r.request.requestId)).not.toContain(request.requestId);
    expect((await audit.loadUnpublished('exec.requests', 0, 0, 100)).map((r) => r.request.requestId)).toContain(request.requestId);

    const before = await rowVersion();
    await audit.markPublished([request.requestId]);
    expect(await inOutbox()).toBe(0);
    // The request's row is the same tuple: a delete from the outbox, not an UPDATE of request_state.
    expect(await rowVersion()).toEqual(before);
    expect((await audit.loadOpen('exec.requests', [0])).map((r) => r.request.requestId)).not.toContain(request.requestId);
    expect((await audit.loadUnpublished('exec.requests', 0, 0, 100)).map((r) => r.request.requestId)).not.toContain(request.requestId);
    expect((await audit.loadByIds([request.requestId], 'exec.requests', 0))[0]).toMatchObject({ status: 'EXECUTED', outcomePublished: true });
  });

  it("an execution's lease is released by the statement that records its final decision: logged, and only with the holder's token", async () => {
    const audit = new AuditStore(pool, 'worker-exec');
    const locks = new LockStore(pool);
    const [arn, other] = [podArn(scope, 'api', 5), podArn(scope, 'api', 6)];
    const [request, late] = [await arrive(audit, arn), await arrive(audit, other)];
    const lease = await locks.acquire({ resourceArn: arn, owner: 'worker:w', agentId: 'agent-exec', ttlMs: 60_000 });
    const token = lease.acquired ? lease.fencingToken : -1;
    const held = async (resourceArn: string) => (await pool.query('SELECT owner FROM arbiter.locks WHERE resource_arn = $1', [resourceArn])).rows[0]?.owner ?? null;
    const decision = { status: 'EXECUTED' as const, rule: 'execute' as const, resourceVersion: 2, fencingToken: token, detail: 'done' };

    sent = [];
    expect(await audit.finalize({ decided: { request, scope, decision, latencyMs: 4 }, release: { resourceArn: arn, owner: 'worker:w', fencingToken: token } })).toBe(true);
    expect(sent).toHaveLength(1);
    expect(await held(arn)).toBeNull();
    const { rows: events } = await pool.query('SELECT event, owner, agent_id, fencing_token FROM arbiter.lock_events WHERE resource_arn = $1 ORDER BY at, event', [arn]);
    expect(events.map((e) => [e.event, e.owner, e.agent_id, Number(e.fencing_token)])).toEqual([
      ['acquired', 'worker:w', 'agent-exec', token],
      ['released', 'worker:w', 'agent-exec', token],
    ]);

    // A lease that moved on (its TTL ran out and someone else holds it now) is not released by a late decision.
    const taken = await locks.acquire({ resourceArn: other, owner: 'agent:someone', agentId: 'someone', ttlMs: 60_000 });
    expect(taken.acquired).toBe(true);
    const staleToken = taken.acquired ? taken.fencingToken - 1 : -1;
    expect(await audit.finalize({ decided: { request: late, scope, decision, latencyMs: 4 }, release: { resourceArn: other, owner: 'worker:w', fencingToken: staleToken } })).toBe(true);
    expect(await held(other)).toBe('agent:someone');
    expect(await count(`SELECT count(*)::int AS n FROM arbiter.lock_events WHERE resource_arn = $1 AND event = 'released'`, other)).toBe(0);
  });

  it('a late writer never moves the resource version back; a progress decision is one statement and stops once final', async () => {
    const audit = new AuditStore(pool, 'worker-exec');
    const arn = podArn(scope, 'api', 3);
    const [newer, older] = [await arrive(audit, arn), await arrive(audit, arn)];
    const resource = (requestId: string, version: number) => ({ arn, scope, version, expectedState: null, requestId, action: 'restart', agentId: 'agent-exec' });
    sent = [];
    expect(await audit.recordProgress({ request: older, scope, decision: { status: 'DEFERRED', rule: 'lock', retryAt: null, detail: 'held' } })).toBe(true);
    expect(sent).toHaveLength(1);
    expect(await audit.finalize({ decided: { request: newer, scope, decision: { status: 'EXECUTED', rule: 'execute', resourceVersion: 8, fencingToken: 1, detail: 'done' } }, resource: resource(newer.requestId, 8) })).toBe(true);
    expect(await audit.finalize({ decided: { request: older, scope, decision: { status: 'EXECUTED', rule: 'execute', resourceVersion: 6, fencingToken: 1, detail: 'done' } }, resource: resource(older.requestId, 6) })).toBe(true);
    expect(await audit.resourceVersion(arn)).toBe(8);
    expect(await audit.recordProgress({ request: older, scope, decision: { status: 'DEFERRED', rule: 'lock', retryAt: null, detail: 'late' } })).toBe(false);
    expect(await count(`SELECT count(*)::int AS n FROM arbiter.decisions WHERE request_id = $1 AND status = 'DEFERRED'`, older.requestId)).toBe(1);
  });

  it('a statement that waited too long for a pooled connection is DATABASE_BUSY: retried, never an unexpected error that ends FAILED', async () => {
    const small = createPool(databaseUrl, { max: 1, connectTimeoutMs: 200 });
    const held = await small.connect();
    try {
      const error = await small.query('SELECT 1').then(() => null, (e: unknown) => e);
      expect(isPoolExhausted(error)).toBe(true);
      // Not a sign of a sick server: health checks must not fail on it.
      expect(isConnectionError(error)).toBe(false);
    } finally {
      held.release();
      await small.end();
    }
    const policy = { maxAttempts: 5, backoffMs: 500, maxBackoffMs: 30_000, lockRetryMs: 1_000 };
    expect(decideOnError(new ArbiterError('DATABASE_BUSY', 'every pooled connection stayed busy'), 99, policy, 0)).toMatchObject({ status: 'DEFERRED', retryAt: 1_000 });
  });
});
