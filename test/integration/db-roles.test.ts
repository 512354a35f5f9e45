import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuditStore } from '../../src/audit/index.ts';
import { coalesceKey } from '../../src/coalesce/index.ts';
import { buildRequest } from '../../src/contract/request.ts';
import { inFlightFollower } from '../../src/contract/decision.ts';
import { createPool, migrate, type Pool } from '../../src/db/index.ts';
import { DetectionStore } from '../../src/detect/index.ts';
import { LockStore } from '../../src/locks/index.ts';
import { PlanStore } from '../../src/plans/index.ts';
import { deploymentArn, podArn } from '../../tools/fleet/index.ts';
import { databaseUrlFor, dropDatabase } from '../support/harness.ts';

/**
 * The roles of migrations/0009_roles.sql (docs/SECURITY.md). The test connects as the superuser
 * and takes on each role with SET ROLE (a pool whose sessions start with role=…), so the
 * privileges checked are exactly the role's: the worker's stores do their job as arbiter_worker,
 * the lock API as arbiter_locks, and the audit trail refuses UPDATE and DELETE.
 */
describe('database roles', () => {
  const suffix = randomUUID().slice(0, 8);
  const databaseUrl = databaseUrlFor(`arbiter_roles_${suffix}`);
  const others = [databaseUrlFor(`arbiter_roles_${suffix}_b`), databaseUrlFor(`arbiter_roles_${suffix}_c`)];
  const pools: Pool[] = [];
  let owner: pg.Client;

  /** A pool whose sessions start as the role (libpq options `-c role=…`: SET ROLE at connect). */
  const poolAs = (role: string): Pool => {
    const url = new URL(databaseUrl);
    url.searchParams.set('options', `-c role=${role}`);
    const pool = createPool(url.toString(), 2);
    pools.push(pool);
    return pool;
  };
  /** Runs one statement as the role in a fresh session; resolves to the error's SQLSTATE, or 'ok'. */
  const asRole = async (role: string, sql: string): Promise<string> => {
    const client = new pg.Client({ connectionString: databaseUrl });
    await client.connect();
    try {
      await client.query(`SET ROLE ${pg.escapeIdentifier(role)}`);
      await client.query(sql);
      return 'ok';
    } catch (error) {
      return (error as { code?: string }).code ?? String(error);
    } finally {
      await client.end();
    }
  };

  beforeAll(async () => {
    // Roles are the server's, grants each database's: three databases migrating at once.
    await Promise.all([databaseUrl, ...others].map((url) => migrate(url)));
    owner = new pg.Client({ connectionString: databaseUrl });
    await owner.connect();
  });
  afterAll(async () => {
    for (const pool of pools) await pool.end().catch(() => undefined);
    await owner?.end();
    for (const url of [databaseUrl, ...others]) await dropDatabase(url);
  });

  it('exist once on the server, NOLOGIN, and the migrator owns the schema', async () => {
    const { rows } = await owner.query<{ rolname: string; rolcanlogin: boolean }>(
      `SELECT rolname, rolcanlogin FROM pg_roles WHERE rolname IN ('arbiter_migrator', 'arbiter_worker', 'arbiter_locks', 'arbiter_analyst') ORDER BY rolname`,
    );
    expect(rows.map((r) => r.rolname)).toEqual(['arbiter_analyst', 'arbiter_locks', 'arbiter_migrator', 'arbiter_worker']);
    for (const r of rows.filter((r) => r.rolname !== 'arbiter_analyst')) expect(r.rolcanlogin, r.rolname).toBe(false);
    const owners = await owner.query<{ owner: string; n: number }>(
      `SELECT pg_get_userbyid(relowner) AS owner, count(*)::int AS n FROM pg_class
        WHERE relnamespace = 'arbiter'::regnamespace AND relkind IN ('r', 'p', 'v') GROUP BY 1`,
    );
    expect(owners.rows.map((r) => r.owner)).toEqual(['arbiter_migrator']);
  });

  it('a migrating login that is not a superuser (CREATEROLE, CREATEDB) migrates, and its database works the same', async () => {
    const login = `arbiter_deploy_${suffix}`;
    const adminUrl = databaseUrlFor(`arbiter_roles_${suffix}_deploy`);
    const url = new URL(adminUrl);
    url.username = login;
    url.password = '';
    await owner.query(`CREATE ROLE ${pg.escapeIdentifier(login)} LOGIN CREATEROLE CREATEDB`);
    try {
      const result = await migrate(url.toString());
      expect(result.createdDatabase).toBe(true);
      const client = new pg.Client({ connectionString: url.toString() });
      await client.connect();
      try {
        expect((await client.query(`SELECT pg_get_userbyid(nspowner) AS o FROM pg_namespace WHERE nspname = 'arbiter'`)).rows[0].o).toBe('arbiter_migrator');
        expect((await client.query(`SELECT pg_has_role(current_user, 'arbiter_migrator', 'USAGE') AS m`)).rows[0].m).toBe(true);
      } finally {
        await client.end();
      }
      // The worker role there (taken by the superuser: the deploy login is not a member of it).
      const worker = new pg.Client({ connectionString: adminUrl });
      await worker.connect();
      try {
        await worker.query('SET ROLE arbiter_worker');
        await worker.query('SELECT arbiter.ensure_partitions(3)');
        const refused = await worker.query(`UPDATE arbiter.decision_log SET detail = 'x'`).then(
          () => 'ok',
          (error: { code?: string }) => error.code,
        );
        expect(refused).toBe('42501');
      } finally {
        await worker.end();
      }
    } finally {
      await dropDatabase(adminUrl);
      await owner.query(`DROP ROLE IF EXISTS ${pg.escapeIdentifier(login)}`);
    }
  });

  it('arbiter_worker may not UPDATE, DELETE or TRUNCATE the audit trail', async () => {
    expect(await asRole('arbiter_worker', `UPDATE arbiter.decision_log SET detail = 'rewritten'`)).toBe('42501');
    // arbiter.decisions and arbiter.requests are views over the tables and the narrow duplicates: not updatable at all.
    expect(await asRole('arbiter_worker', `UPDATE arbiter.decisions SET detail = 'rewritten'`)).toBe('55000');
    expect(await asRole('arbiter_worker', 'DELETE FROM arbiter.lock_events')).toBe('42501');
    expect(await asRole('arbiter_worker', `UPDATE arbiter.executions SET detail = 'rewritten'`)).toBe('42501');
    expect(await asRole('arbiter_worker', 'DELETE FROM arbiter.request_log')).toBe('42501');
    expect(await asRole('arbiter_worker', `UPDATE arbiter.decision_log SET detail = 'rewritten'`)).toBe('42501');
    expect(await asRole('arbiter_worker', 'TRUNCATE arbiter.decision_log')).toBe('42501');
    expect(await asRole('arbiter_worker', 'DELETE FROM arbiter.duplicates')).toBe('42501');
    // Nor drop partitions (retention is the migrator's), nor DDL.
    expect(await asRole('arbiter_worker', `SELECT arbiter.drop_old_partitions('0 days')`)).toBe('42501');
    expect(await asRole('arbiter_worker', 'CREATE TABLE arbiter.x (a int)')).toBe('42501');
    expect(await asRole('arbiter_worker', 'DROP TABLE arbiter.decision_log')).toBe('42501');
  });

  it('the append-only triggers refuse a rewrite even where a grant slipped through', async () => {
    const arn = podArn(deploymentArn('roles', 'trig'), 'trig', 0);
    await owner.query(`INSERT INTO arbiter.lock_events (resource_arn, event, owner) VALUES ($1, 'acquired', 'test')`, [arn]);
    await owner.query('GRANT UPDATE, DELETE ON arbiter.decision_log, arbiter.duplicates, arbiter.lock_events TO arbiter_locks');
    try {
      expect(await asRole('arbiter_locks', `DELETE FROM arbiter.lock_events WHERE resource_arn = '${arn}'`)).toBe('42501');
      expect(await asRole('arbiter_locks', `UPDATE arbiter.lock_events SET detail = 'x' WHERE resource_arn = '${arn}'`)).toBe('42501');
    } finally {
      await owner.query('REVOKE UPDATE, DELETE ON arbiter.decision_log, arbiter.duplicates, arbiter.lock_events FROM arbiter_locks');
    }
    const { rows } = await owner.query('SELECT detail FROM arbiter.lock_events WHERE resource_arn = $1', [arn]);
    expect(rows).toEqual([{ detail: null }]);
  });

  it('arbiter_analyst is refused on the raw payload tables', async () => {
    for (const table of ['requests', 'dead_letters', 'request_state', 'decisions', 'locks', 'plan_steps']) {
      expect(await asRole('arbiter_analyst', `SELECT * FROM arbiter.${table} LIMIT 1`), table).toBe('42501');
    }
    expect(await asRole('arbiter_analyst', 'SELECT * FROM arbiter.resource_timeline LIMIT 1')).toBe('ok');
  });

  it('arbiter_locks: the lock API works, and nothing else', async () => {
    const pool = poolAs('arbiter_locks');
    expect((await pool.query('SELECT current_user AS who')).rows[0].who).toBe('arbiter_locks');
    const locks = new LockStore(pool);
    const arn = podArn(deploymentArn('roles', 'locks'), 'locks', 0);
    const got = await locks.acquire({ resourceArn: arn, owner: 'agent:a', agentId: 'a', ttlMs: 200 });
    expect(got.acquired).toBe(true);
    const failed = await locks.acquire({ resourceArn: arn, owner: 'agent:b', agentId: 'b', ttlMs: 1000 });
    expect(failed.acquired).toBe(false);
    if (!got.acquired) throw new Error('unreachable');
    expect(await locks.renew({ resourceArn: arn, owner: 'agent:a', fencingToken: got.fencingToken, ttlMs: 100 })).toBe(true);
    await locks.recordFenced(arn, 'agent:a', 'a', got.fencingToken, 'test');
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect((await locks.reapExpired()).map((l) => l.resourceArn)).toContain(arn);
    const again = await locks.acquire({ resourceArn: arn, owner: 'agent:b', agentId: 'b', ttlMs: 1000 });
    if (!again.acquired) throw new Error('not acquired');
    expect(await locks.release({ resourceArn: arn, owner: 'agent:b', fencingToken: again.fencingToken })).toBe(true);
    expect((await locks.list({ resourceArn: arn })).length).toBe(1);
    const { rows } = await owner.query('SELECT event FROM arbiter.lock_events WHERE resource_arn = $1 ORDER BY at', [arn]);
    expect(rows.map((r) => r.event)).toEqual(expect.arrayContaining(['acquired', 'acquire_failed', 'renewed', 'fenced', 'expired', 'released']));

    for (const table of ['requests', 'decisions', 'request_state', 'resource_state', 'dead_letters']) {
      expect(await asRole('arbiter_locks', `SELECT 1 FROM arbiter.${table} LIMIT 1`), table).toBe('42501');
    }
    expect(await asRole('arbiter_locks', 'SELECT detail, holder_owner FROM arbiter.lock_events LIMIT 1')).toBe('42501');
    expect(await asRole('arbiter_locks', 'DELETE FROM arbiter.locks')).toBe('42501');
  });

  it("arbiter_worker: the stores' statements — audit, locks, plans, detection, upkeep — all succeed", async () => {
    const pool = poolAs('arbiter_worker');
    expect((await pool.query('SELECT current_user AS who')).rows[0].who).toBe('arbiter_worker');
    const scope = deploymentArn('roles', 'api');
    const arn = podArn(scope, 'api', 0);
    const topic = `roles-${suffix}.requests`;

    // Audit: arrival, progress, execution, final decision with the resource's new version, publication.
    const audit = new AuditStore(pool, 'worker-roles');
    const request = buildRequest({ agentId: 'agent-roles', resourceArn: arn, action: 'restart' });
    const duplicate = buildRequest({ agentId: 'agent-roles-2', resourceArn: arn, action: 'restart' });
    const arrivals = [
      {
        request,
        scope,
        topic,
        partition: 0,
        offset: '0',
        reroutedFrom: null,
        coalesceKey: coalesceKey(arn, 'restart', {}),
        decision: { status: 'ACCEPTED' as const, rule: 'accept' as const, notBefore: Date.now(), detail: 'accepted' },
      },
      {
        request: duplicate,
        scope,
        topic,
        partition: 0,
        offset: '2',
        reroutedFrom: null,
        coalesceKey: coalesceKey(arn, 'restart', {}),
        decision: inFlightFollower(request.requestId),
      },
    ];
    const accepted = await audit.recordArrivals({
      arrivals,
      deadLetters: [
        { topic, partition: 0, offset: '1', key: null, value: Buffer.from('junk'), headers: {}, errorCode: 'DESERIALIZE', error: 'bad bytes' },
      ],
    });
    expect(accepted.kind === 'written' && [...accepted.fresh].sort()).toEqual([request.requestId, duplicate.requestId].sort());
    // Written again (a redelivery): nothing is written, both ids come back as known.
    const again = await audit.recordArrivals({ arrivals, deadLetters: [] });
    expect(again.kind === 'known' && [...again.known.keys()].sort()).toEqual([request.requestId, duplicate.requestId].sort());
    expect(await audit.recordProgress({ request, scope, decision: { status: 'DEFERRED', rule: 'lock', retryAt: null, detail: 'waiting' } })).toBe(true);
    // The open primary, and the duplicate waiting for it.
    expect((await audit.loadOpen(topic, [0])).map((s) => s.request.requestId)).toEqual([request.requestId, duplicate.requestId]);
    const execution = {
      requestId: request.requestId,
      resourceArn: arn,
      scope,
      action: 'restart',
      agentId: 'agent-roles',
      phase: 'started' as const,
      fencingToken: 1,
      resourceVersion: null,
      detail: null,
    };
    expect((await audit.beginExecution(execution)).recorded).toBe(true);
    expect(await audit.beginExecution(execution)).toEqual({ final: null, started: true, recorded: false });
    expect((await audit.executionState(request.requestId)).started).toBe(true);
    // The final decision releases the execution's lease in its statement.
    const executionLocks = new LockStore(pool);
    const executionLease = await executionLocks.acquire({ resourceArn: arn, owner: 'worker-roles', ttlMs: 60_000 });
    if (!executionLease.acquired) throw new Error('not acquired');
    expect(
      await audit.finalize({
        decided: { request, scope, decision: { status: 'EXECUTED', rule: 'execute', resourceVersion: 2, fencingToken: 1, detail: 'done' } },
        execution: { ...execution, phase: 'succeeded', resourceVersion: 2 },
        resource: { arn, scope, version: 2, expectedState: { restarted: true }, requestId: request.requestId, action: 'restart', agentId: 'agent-roles' },
        release: { resourceArn: arn, owner: 'worker-roles', fencingToken: executionLease.fencingToken },
      }),
    ).toBe(true);
    expect(await executionLocks.list({ resourceArn: arn, heldOnly: true })).toEqual([]);
    expect(await audit.resourceVersion(arn)).toBe(2);
    expect((await audit.finalDecisions([request.requestId])).get(request.requestId)?.status).toBe('EXECUTED');
    await audit.dependencyStatus([request.requestId]);
    await audit.loadUnpublished(topic, 0, 0, 10);
    await audit.loadByIds([request.requestId], topic, 0);
    await audit.loadRecentlyExecuted(topic, [0], 60_000);
    await audit.markPublished([request.requestId]);
    await audit.recordObservation(arn, 'executor:test', 2, { restarted: true });
    await audit.recordInconsistency({ resourceArn: arn, scope, kind: 'drift', expected: 2, observed: 3, requestIds: [request.requestId], detail: 'test' });

    // Locks, as a worker takes them.
    const locks = new LockStore(pool);
    const lease = await locks.acquire({ resourceArn: arn, owner: 'worker-roles', ttlMs: 1000 });
    if (!lease.acquired) throw new Error('not acquired');
    expect(await locks.release({ resourceArn: arn, owner: 'worker-roles', fencingToken: lease.fencingToken })).toBe(true);
    await locks.reapExpired();

    // Plans: create, advance, relay the outbox, cancel.
    const plans = new PlanStore(pool);
    const planId = randomUUID();
    const step = (n: number, after: number[]) => ({ step: n, requestId: randomUUID(), action: 'restart', resourceArn: podArn(scope, 'api', n), params: {}, after });
    await plans.create({ planId, agentId: 'agent-roles', steps: [step(1, []), step(2, [1])], deadline: Date.now() + 60_000, reason: null, incidentId: null, parentRequestId: null });
    await plans.plansWithWork();
    await plans.advance(planId);
    expect(await plans.relayOutbox(async () => {})).toBeGreaterThan(0);
    await plans.requestCancel(planId, 'agent-roles', 'test');
    expect(await plans.summary(planId)).not.toBeNull();
    await plans.events(planId);
    await plans.list();

    // Detection: observations, the view of a resource, findings, stale sweeps.
    const detection = new DetectionStore(pool);
    const observation = {
      observationId: randomUUID(),
      resourceArn: arn,
      version: 3,
      state: '{}',
      source: 'executor:test',
      observedAt: Date.now(),
      effectiveRequestIds: [request.requestId],
      recentChanges: [],
    };
    await detection.storeObservations([{ observation, scope }]);
    await detection.viewFor(observation, 60_000);
    await detection.noteObserved(observation);
    await detection.noteObserved({ ...observation, observationId: randomUUID(), observedAt: Date.now() + 1 });
    const recorded = await detection.record(
      [{ kind: 'unexpected_version', resourceArn: arn, fingerprint: `fp-${suffix}`, detail: 'test', requestIds: [], evidence: { agents: [], versions: {}, observationIds: [] } }],
      scope,
    );
    expect(recorded.length).toBe(1);
    await detection.staleObservations(1);

    // Upkeep: next months' partitions and pruning working state, as the owner through SECURITY DEFINER.
    await pool.query('SELECT arbiter.ensure_partitions(4)');
    await pool.query(`SELECT arbiter.prune_request_state('0 days'::interval)`);
    const { rows } = await owner.query(`SELECT count(*)::int AS n FROM pg_class WHERE relname LIKE 'decision_log_2%' AND pg_get_userbyid(relowner) = 'arbiter_migrator'`);
    expect(rows[0].n).toBeGreaterThanOrEqual(5);
    // The lock-log exporter reads lock_events.
    await pool.query('SELECT count(*) FROM arbiter.lock_events');
  });
});
