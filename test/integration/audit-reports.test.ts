import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPool, migrate, type Pool } from '../../src/db/index.ts';
import { setAnalystLogin } from '../../src/db/migrate.ts';
import { LockStore } from '../../src/locks/index.ts';
import { runArbiterCli } from '../support/cli.ts';
import { databaseUrlFor, dropDatabase } from '../support/harness.ts';

/**
 * `arbiter audit <report>` and `arbiter audit ack` as an analyst and an operator run them: against
 * a database seeded with a known story (no Kafka needed), through the built CLI, as the
 * read-only role `arbiter_analyst` for the reports.
 *
 * The story, at T0 + seconds (T0 two hours ago), on the deployment WEB:
 *   0  alice asks restart (r1), accepted;       1  a worker locks WEB for alice and starts r1
 *   2  bob asks restart (r2): coalesced into r1; 3  r1 executed (version 2), lock released
 *  10  carol asks scale based on version 1 (r3): REJECTED_STALE — alice's r1 made version 2
 *  20  bob asks rollback (r4): REJECTED_CONFLICT with alice's restart (named in the detail)
 *  30  an observation of WEB at version 3;       31  a drift finding (kubectl-dave went around Arbiter)
 * On the node NODE: alice holds the lock from 40; bob fails to acquire it at 41 and 42, carol at 43;
 * alice renews at 50 (TTL 60 s), it lapses at 110 and is recorded expired at 115 (held 70 s).
 * On the pod POD: carol's lock (TTL 10 s) taken at 60 is recorded expired at 75 (held 10 s).
 * And now, through the real LockStore on LIVE: erin's 50 ms lease expires, frank takes it over, erin
 * then fails to acquire it.
 */
const WEB = 'arn:sim:k8s:local:000000000000:cluster/prod/deployment/web';
const NODE = 'arn:sim:k8s:local:000000000000:cluster/prod/node/n1';
const POD = 'arn:sim:k8s:local:000000000000:cluster/prod/pod/web-0';
const LIVE = 'arn:sim:k8s:local:000000000000:cluster/prod/node/live';
const ANALYST_PASSWORD = `analyst-${randomUUID().slice(0, 8)}`;
/** Tables as a person reads them: without the colour codes cli-table3 adds (under vitest it colours even into a pipe). */
const ANSI = new RegExp(`${String.fromCharCode(27)}\\[[0-9;]*m`, 'g');
const plain = (text: string) => text.replace(ANSI, '');

describe('arbiter audit: the analysts\' reports and ack', () => {
  const dbName = `arbiter_audit_${randomUUID().slice(0, 8)}`;
  const databaseUrl = databaseUrlFor(dbName);
  const analystUrl = (() => {
    const url = new URL(databaseUrl);
    url.username = 'arbiter_analyst';
    url.password = ANALYST_PASSWORD;
    return url.toString();
  })();
  let db: Pool;
  let t0: number;
  const at = (s: number) => new Date(t0 + s * 1_000);
  const ids = { r1: randomUUID(), r2: randomUUID(), r3: randomUUID(), r4: randomUUID(), finding: randomUUID(), observation: randomUUID() };
  let previousRole: { rolcanlogin: boolean; rolpassword: string | null } | undefined;

  /** Runs `arbiter audit …` as the analyst (reports) or as the owner (ack). */
  const audit = async (args: string[], as: 'analyst' | 'owner' = 'analyst') => {
    const result = await runArbiterCli(['audit', ...args], { ...process.env, DATABASE_URL: as === 'analyst' ? analystUrl : databaseUrl, ARBITER_CONFIG: '' });
    return { ...result, stdout: plain(result.stdout) };
  };
  const auditJson = async (args: string[], as: 'analyst' | 'owner' = 'analyst') => {
    const result = await audit([...args, '--json'], as);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    return JSON.parse(result.stdout);
  };

  beforeAll(async () => {
    await migrate(databaseUrl);
    db = createPool(databaseUrl, 2);
    // The role is the server's: note how it was, give it LOGIN for this test, put it back afterwards.
    previousRole = (await db.query("SELECT rolcanlogin, rolpassword FROM pg_authid WHERE rolname = 'arbiter_analyst'")).rows[0];
    const client = await db.connect();
    await setAnalystLogin(client, ANALYST_PASSWORD).finally(() => client.release());
    await seed();
  });
  afterAll(async () => {
    if (previousRole) {
      const login = previousRole.rolcanlogin ? 'LOGIN' : 'NOLOGIN';
      const password = previousRole.rolpassword === null ? 'NULL' : pg.escapeLiteral(previousRole.rolpassword);
      await db?.query(`ALTER ROLE arbiter_analyst ${login} PASSWORD ${password}`);
    }
    await db?.end();
    await dropDatabase(databaseUrl);
  });

  async function seed(): Promise<void> {
    t0 = Date.now() - 2 * 3_600_000;
    const request = (id: string, s: number, agent: string, arn: string, action: string, expectedVersion: number | null, reason: string | null) =>
      db.query(
        `INSERT INTO arbiter.request_log (request_id, agent_id, resource_arn, scope, action, params, expected_version, reason, requested_at, received_at, topic, kafka_partition, kafka_offset)
         VALUES ($1, $2, $3, 'prod', $4, '{"secret": "payload"}', $5, $6, $7, $7, 't.requests', 0, 0)`,
        [id, agent, arn, action, expectedVersion, reason, at(s)],
      );
    const decision = (id: string, s: number, agent: string, action: string, status: string, final: boolean, extra: { primary?: string; version?: number; token?: number; detail?: string } = {}) =>
      db.query(
        `INSERT INTO arbiter.decision_log (request_id, agent_id, resource_arn, scope, action, status, final, primary_request_id, resource_version, fencing_token, detail, decided_at)
         VALUES ($1, $2, $3, 'prod', $4, $5, $6, $7, $8, $9, $10, $11)`,
        [id, agent, WEB, action, status, final, extra.primary ?? null, extra.version ?? null, extra.token ?? null, extra.detail ?? null, at(s)],
      );
    const execution = (id: string, s: number, phase: string, version: number | null) =>
      db.query(
        `INSERT INTO arbiter.executions (request_id, resource_arn, scope, action, agent_id, phase, fencing_token, resource_version, worker_id, at)
         VALUES ($1, $2, 'prod', 'restart', 'alice', $3, 1, $4, 'w1', $5)`,
        [id, WEB, phase, version, at(s)],
      );
    const lock = (s: number, arn: string, event: string, owner: string, agent: string | null, token: number, extra: { holderOwner?: string; holderAgent?: string; ttlMs?: number; detail?: string } = {}) =>
      db.query(
        `INSERT INTO arbiter.lock_events (resource_arn, event, owner, agent_id, fencing_token, holder_owner, holder_agent, ttl_ms, detail, at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
        [arn, event, owner, agent, token, extra.holderOwner ?? null, extra.holderAgent ?? null, extra.ttlMs ?? null, extra.detail ?? null, at(s)],
      );

    await request(ids.r1, 0, 'alice', WEB, 'restart', null, 'pods crash-looping, "OOMKilled"');
    await decision(ids.r1, 0, 'alice', 'restart', 'ACCEPTED', false);
    await lock(1, WEB, 'acquired', 'w1', 'alice', 1, { ttlMs: 30_000 });
    await execution(ids.r1, 1, 'started', null);
    await request(ids.r2, 2, 'bob', WEB, 'restart', null, null);
    await decision(ids.r2, 2, 'bob', 'restart', 'COALESCED', true, { primary: ids.r1 });
    await execution(ids.r1, 3, 'succeeded', 2);
    await decision(ids.r1, 3, 'alice', 'restart', 'EXECUTED', true, { version: 2, token: 1 });
    await lock(3.5, WEB, 'released', 'w1', 'alice', 1);
    await request(ids.r3, 10, 'carol', WEB, 'scale', 1, null);
    await decision(ids.r3, 10, 'carol', 'scale', 'REJECTED_STALE', true, { version: 2, detail: 'expected version 1 but the resource is at version 2; re-observe and decide again' });
    await request(ids.r4, 20, 'bob', WEB, 'rollback', null, null);
    await decision(ids.r4, 20, 'bob', 'rollback', 'REJECTED_CONFLICT', true, {
      version: 2,
      detail: `rollback conflicts with restart by alice (request ${ids.r1}) 17s ago; re-observe and decide again`,
    });
    await db.query(`INSERT INTO arbiter.observations (observation_id, resource_arn, source, version, state, observed_at) VALUES ($1, $2, 'sim', 3, '{"replicas": 3}', $3)`, [
      ids.observation,
      WEB,
      at(30),
    ]);
    await db.query(
      `INSERT INTO arbiter.inconsistencies (finding_id, resource_arn, scope, kind, expected, observed, request_ids, detail, evidence, fingerprint, detected_at)
       VALUES ($1, $2, 'prod', 'drift', '{"version": 2}', '{"version": 3}', $3, 'scale by kubectl-dave changed the resource to version 3, without Arbiter', $4, $5, $6)`,
      [ids.finding, WEB, [ids.r1], JSON.stringify({ agents: ['kubectl-dave', 'alice'], versions: { arbiter: 2, observed: 3 }, observationIds: [ids.observation] }), `drift:${WEB}:x`, at(31)],
    );

    await lock(40, NODE, 'acquired', 'agent:alice', 'alice', 7, { ttlMs: 60_000 });
    await lock(41, NODE, 'acquire_failed', 'agent:bob', 'bob', 7, { holderOwner: 'agent:alice', holderAgent: 'alice', ttlMs: 30_000 });
    await lock(42, NODE, 'acquire_failed', 'agent:bob', 'bob', 7, { holderOwner: 'agent:alice', holderAgent: 'alice', ttlMs: 30_000 });
    await lock(43, NODE, 'acquire_failed', 'agent:carol', 'carol', 7, { holderOwner: 'agent:alice', holderAgent: 'alice', ttlMs: 30_000 });
    await lock(50, NODE, 'renewed', 'agent:alice', 'alice', 7, { ttlMs: 60_000 });
    await lock(115, NODE, 'expired', 'agent:alice', 'alice', 7, { ttlMs: 60_000, detail: 'expired unreleased' });
    await lock(60, POD, 'acquired', 'agent:carol', 'carol', 4, { ttlMs: 10_000 });
    await lock(75, POD, 'expired', 'agent:carol', 'carol', 4, { ttlMs: 10_000, detail: 'expired unreleased' });

    // Now, through the lock store itself.
    const locks = new LockStore(db);
    expect(await locks.acquire({ resourceArn: LIVE, owner: 'agent:erin', agentId: 'erin', ttlMs: 50 })).toMatchObject({ acquired: true });
    await new Promise((resolve) => setTimeout(resolve, 150));
    expect(await locks.acquire({ resourceArn: LIVE, owner: 'agent:frank', agentId: 'frank', ttlMs: 60_000 })).toMatchObject({ acquired: true });
    expect(await locks.acquire({ resourceArn: LIVE, owner: 'agent:erin', agentId: 'erin', ttlMs: 60_000 })).toMatchObject({ acquired: false });
  }

  it('timeline --arn: everything that happened to the resource, in order, without request payloads', async () => {
    const json = await auditJson(['timeline', '--arn', WEB]);
    expect(json.filters).toMatchObject({ arn: WEB });
    const steps = json.timeline.map((r: { kind: string; status: string | null; agent: string | null }) => `${r.kind}:${r.status ?? ''}:${r.agent ?? ''}`);
    expect(steps).toEqual([
      'request::alice',
      'decision:ACCEPTED:alice',
      'lock:acquired:alice',
      'execution:started:alice',
      'request::bob',
      'decision:COALESCED:bob',
      'execution:succeeded:alice',
      'decision:EXECUTED:alice',
      'lock:released:alice',
      'request::carol',
      'decision:REJECTED_STALE:carol',
      'request::bob',
      'decision:REJECTED_CONFLICT:bob',
      'observation:sim:',
      'inconsistency:drift:',
    ]);
    expect(json.timeline[0]).toMatchObject({ requestId: ids.r1, action: 'restart', detail: 'pods crash-looping, "OOMKilled"' });
    expect(json.timeline[7]).toMatchObject({ resourceVersion: 2, fencingToken: 1 });
    expect(json.timeline[13]).toMatchObject({ resourceVersion: 3, ref: ids.observation });
    expect(json.timeline[14]).toMatchObject({ ref: ids.finding });
    expect(JSON.stringify(json)).not.toContain('payload');

    const table = await audit(['timeline', '--arn', WEB]);
    expect(table.code).toBe(0);
    expect(table.stdout).toContain(`Timeline of ${WEB}:`);
    expect(table.stdout).toMatch(/│ at\s+│ kind\s+│ status\/event/);
    expect(table.stdout).toContain('REJECTED_CONFLICT');

    const csv = await audit(['timeline', '--arn', WEB, '--csv']);
    expect(csv.code).toBe(0);
    const lines = csv.stdout.split('\r\n');
    expect(lines[0]).toBe('at,kind,status,action,agent,requestId,resourceVersion,fencingToken,detail,ref');
    expect(lines).toHaveLength(15 + 2); // header, 15 rows, and the empty string after the last CRLF
    // The reason has a comma and quotes: one quoted field, quotes doubled.
    expect(lines[1]).toBe(`${at(0).toISOString()},request,,restart,alice,${ids.r1},,,"pods crash-looping, ""OOMKilled""",`);
  });

  it('--since/--until (ISO or a duration ago) and --agent narrow the timeline; timeline needs --arn or --agent', async () => {
    const window = await auditJson(['timeline', '--arn', WEB, '--since', at(5).toISOString(), '--until', at(25).toISOString()]);
    expect(window.timeline.map((r: { requestId: string }) => r.requestId)).toEqual([ids.r3, ids.r3, ids.r4, ids.r4]);
    const bob = await auditJson(['timeline', '--agent', 'bob']);
    expect(new Set(bob.timeline.map((r: { agent: string }) => r.agent))).toEqual(new Set(['bob']));
    expect(bob.timeline.some((r: { resourceArn: string }) => r.resourceArn === NODE)).toBe(true);
    // The seeded story is two hours old: nothing of it in the last 30 minutes.
    expect((await auditJson(['timeline', '--arn', WEB, '--since', '30m'])).timeline).toEqual([]);
    expect((await auditJson(['timeline', '--arn', WEB, '--until', '3h'])).timeline).toEqual([]);

    const missing = await audit(['timeline']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/timeline needs --arn .* or --agent/);
    const badTime = await audit(['timeline', '--arn', WEB, '--since', 'yesterday']);
    expect(badTime.code).toBe(1);
    expect(badTime.stderr).toContain('"yesterday" is neither an ISO 8601 time nor a duration');
    const backwards = await audit(['contention', '--since', '10m', '--until', '1h']);
    expect(backwards.code).toBe(1);
    expect(backwards.stderr).toContain('must be before --until');
  });

  it('contention: by resource and by agent pair, who held and who waited, from seeded and live lock events', async () => {
    const json = await auditJson(['contention']);
    expect(json.byPair).toEqual([
      expect.objectContaining({ holding: 'alice', waiting: 'bob', failedAcquires: 2, resources: 1, resourceArns: [NODE] }),
      expect.objectContaining({ holding: 'alice', waiting: 'carol', failedAcquires: 1 }),
      expect.objectContaining({ holding: 'frank', waiting: 'erin', failedAcquires: 1, resourceArns: [LIVE] }),
    ]);
    expect(json.byResource).toEqual([
      expect.objectContaining({ resourceArn: NODE, failedAcquires: 3, holders: ['alice'], waiters: ['bob', 'carol'], pairs: 2 }),
      expect.objectContaining({ resourceArn: LIVE, failedAcquires: 1, holders: ['frank'], waiters: ['erin'], pairs: 1 }),
    ]);
    expect(json.byPair[0].firstAt).toBe(at(41).toISOString());

    const carol = await auditJson(['contention', '--agent', 'carol']);
    expect(carol.byPair.map((p: { waiting: string }) => p.waiting)).toEqual(['carol']);
    const recent = await auditJson(['contention', '--since', '30m']);
    expect(recent.byPair.map((p: { holding: string; waiting: string }) => `${p.holding}>${p.waiting}`)).toEqual(['frank>erin']);
    const onNode = await auditJson(['contention', '--arn', NODE, '--section', 'byPair']);
    expect(Object.keys(onNode)).toEqual(['report', 'filters', 'byPair']);
    expect(onNode.byPair).toHaveLength(2);

    const table = await audit(['contention']);
    expect(table.stdout).toContain('Lock contention by agent pair (who held, who waited):');
    expect(table.stdout).toMatch(/│ held by\s+│ waited\s+│ failed acquires/);
    // CSV prints one section: the first, or the one named.
    const csv = await audit(['contention', '--csv', '--section', 'byPair']);
    expect(csv.code).toBe(0);
    expect(csv.stdout.split('\r\n').slice(0, 2)).toEqual([
      'holding,waiting,failedAcquires,resources,resourceArns,firstAt,lastAt',
      `alice,bob,2,1,${NODE},${at(41).toISOString()},${at(42).toISOString()}`,
    ]);
    const first = await audit(['contention', '--csv']);
    expect(first.stdout.startsWith('resourceArn,failedAcquires,holders,waiters,pairs,firstAt,lastAt\r\n')).toBe(true);
    expect(first.stdout).toContain(`${NODE},3,alice,bob; carol,2,`);
    expect(first.stderr).toContain('CSV of section byResource; --section byPair for the others');
    const bad = await audit(['contention', '--section', 'nope']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('has no section "nope"');
  });

  it('ttl-expirations: by agent, each lock held how long against its TTL (acquired joined to expired)', async () => {
    const json = await auditJson(['ttl-expirations']);
    const alice = json.expirations.find((e: { agent: string }) => e.agent === 'alice');
    expect(alice).toMatchObject({
      resourceArn: NODE,
      fencingToken: 7,
      acquiredAt: at(40).toISOString(),
      ttlMs: 60_000,
      renewals: 1,
      heldMs: 70_000, // acquired at 40, renewed at 50 for 60 s: lapsed at 110
      expiresAt: at(110).toISOString(),
      expiredAt: at(115).toISOString(),
      reapedMs: 5_000,
      owner: 'agent:alice',
    });
    expect(json.expirations.find((e: { agent: string }) => e.agent === 'carol')).toMatchObject({ resourceArn: POD, heldMs: 10_000, ttlMs: 10_000, renewals: 0 });
    const erin = json.expirations.find((e: { agent: string }) => e.agent === 'erin');
    expect(erin).toMatchObject({ resourceArn: LIVE, ttlMs: 50, heldMs: 50, renewals: 0 });
    expect(erin.reapedMs).toBeGreaterThanOrEqual(50);
    expect(json.byAgent.map((a: { agent: string; expirations: number }) => `${a.agent}:${a.expirations}`).sort()).toEqual(['alice:1', 'carol:1', 'erin:1']);
    expect(json.byAgent.find((a: { agent: string }) => a.agent === 'alice')).toMatchObject({ avgHeldMs: 70_000, maxHeldMs: 70_000, avgTtlMs: 60_000, renewals: 1 });

    const onlyCarol = await auditJson(['ttl-expirations', '--agent', 'carol']);
    expect(onlyCarol.expirations).toHaveLength(1);
    const table = await audit(['ttl-expirations', '--arn', NODE]);
    expect(table.stdout).toContain('TTL expirations by agent:');
    expect(table.stdout).toMatch(/│ alice\s+│ 1\s+│ 1\s+│ 1m10s\s+│ 1m10s\s+│ 1m00s/);
    const csv = await audit(['ttl-expirations', '--csv', '--section', 'expirations', '--arn', POD]);
    expect(csv.stdout).toBe(
      'agent,resourceArn,fencingToken,acquiredAt,heldMs,ttlMs,renewals,expiresAt,expiredAt,reapedMs,owner\r\n' +
        `carol,${POD},4,${at(60).toISOString()},10000,10000,0,${at(70).toISOString()},${at(75).toISOString()},5000,agent:carol\r\n`,
    );
  });

  it('coalescing and conflicts name the other agent: whose request absorbed which, and which change a rejected request lost to', async () => {
    const coalescing = await auditJson(['coalescing']);
    expect(coalescing.primaries).toEqual([
      { primaryRequestId: ids.r1, primaryAgent: 'alice', resourceArn: WEB, action: 'restart', coalesced: 1, agents: ['bob'], firstAt: at(2).toISOString(), lastAt: at(2).toISOString() },
    ]);
    expect((await auditJson(['coalescing', '--agent', 'carol'])).primaries).toEqual([]);

    const conflicts = await auditJson(['conflicts']);
    expect(conflicts.rejections).toEqual([
      expect.objectContaining({ requestId: ids.r3, status: 'REJECTED_STALE', agent: 'carol', rivalAgent: 'alice', rivalRequestId: ids.r1, rivalAction: 'restart' }),
      expect.objectContaining({ requestId: ids.r4, status: 'REJECTED_CONFLICT', agent: 'bob', rivalAgent: 'alice', rivalRequestId: ids.r1 }),
    ]);
    expect(conflicts.byPair).toEqual([
      expect.objectContaining({ agent: 'bob', rivalAgent: 'alice', stale: 0, conflict: 1 }),
      expect.objectContaining({ agent: 'carol', rivalAgent: 'alice', stale: 1, conflict: 0 }),
    ]);
    const table = await audit(['conflicts', '--agent', 'carol']);
    expect(table.stdout).toContain('REJECTED_STALE');
    expect(table.stdout).not.toContain('REJECTED_CONFLICT');
  });

  it('agents: what each asked, what it got, and whom it raced with', async () => {
    const json = await auditJson(['agents']);
    const byName = Object.fromEntries(json.agents.map((a: { agent: string }) => [a.agent, a]));
    expect(byName.alice).toMatchObject({
      requests: 1,
      asked: { restart: 1 },
      got: { EXECUTED: 1 },
      racedWith: { bob: { absorbed: 1, caused_rejection: 1, lock_blocked: 2 }, carol: { caused_rejection: 1, lock_blocked: 1 } },
      lockWaits: 0,
      lockBlocks: 3,
      lockExpirations: 1,
    });
    expect(byName.bob).toMatchObject({
      requests: 2,
      asked: { restart: 1, rollback: 1 },
      got: { COALESCED: 1, REJECTED_CONFLICT: 1 },
      racedWith: { alice: { coalesced_into: 1, rejected_after: 1, lock_waited: 2 } },
      lockWaits: 2,
    });
    expect(byName.carol).toMatchObject({ asked: { scale: 1 }, got: { REJECTED_STALE: 1 }, racedWith: { alice: { rejected_after: 1, lock_waited: 1 } }, lockExpirations: 1 });
    expect(byName.erin).toMatchObject({ requests: 0, racedWith: { frank: { lock_waited: 1 } }, lockExpirations: 1 });
    expect(json.rivals).toContainEqual(expect.objectContaining({ agent: 'bob', otherAgent: 'alice', relation: 'lock_waited', count: 2 }));

    const onlyBob = await auditJson(['agents', '--agent', 'bob']);
    expect(onlyBob.agents.map((a: { agent: string }) => a.agent)).toEqual(['bob']);
    const table = await audit(['agents', '--agent', 'bob']);
    expect(table.stdout).toContain('alice (coalesced_into 1, rejected_after 1, lock_waited 2)');
    const csv = await audit(['agents', '--csv', '--agent', 'bob']);
    expect(csv.stdout.split('\r\n')[1]).toMatch(/^bob,2,restart 1; rollback 1,COALESCED 1; REJECTED_CONFLICT 1,alice \(coalesced_into 1; rejected_after 1; lock_waited 2\),2,0,0,/);
  });

  it('inconsistencies with status and evidence, and `audit ack` acknowledging then resolving a finding (as an operator, not the analyst)', async () => {
    const json = await auditJson(['inconsistencies']);
    expect(json.findings).toEqual([
      expect.objectContaining({
        findingId: ids.finding,
        kind: 'drift',
        status: 'open',
        resourceArn: WEB,
        agents: ['alice', 'kubectl-dave'],
        evidence: { agents: ['kubectl-dave', 'alice'], versions: { arbiter: 2, observed: 3 }, observationIds: [ids.observation] },
        requestIds: [ids.r1],
        acknowledgedBy: null,
      }),
    ]);
    expect((await auditJson(['inconsistencies', '--agent', 'kubectl-dave'])).findings).toHaveLength(1);
    expect((await auditJson(['inconsistencies', '--status', 'acknowledged'])).findings).toEqual([]);
    expect((await auditJson(['inconsistencies', '--kind', 'lost_change'])).findings).toEqual([]);
    const csv = await audit(['inconsistencies', '--csv']);
    expect(csv.stdout).toContain(`"{""agents"":[""kubectl-dave"",""alice""],""versions"":{""arbiter"":2,""observed"":3},""observationIds"":[""${ids.observation}""]}"`);

    // The analyst reads; it may not write.
    const refused = await audit(['ack', ids.finding, '--by', 'analyst-ann']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('may not update arbiter.inconsistencies');

    const acked = await auditJson(['ack', ids.finding, '--by', 'sre-sam', '--note', 'kubectl scale during the incident, approved'], 'owner');
    expect(acked).toMatchObject({ findingId: ids.finding, status: 'acknowledged', acknowledgedBy: 'sre-sam', resolvedAt: null, note: 'kubectl scale during the incident, approved' });
    const listed = await auditJson(['inconsistencies', '--status', 'acknowledged']);
    expect(listed.findings).toEqual([expect.objectContaining({ findingId: ids.finding, acknowledgedBy: 'sre-sam', acknowledgedAt: acked.acknowledgedAt })]);

    const resolved = await audit(['ack', ids.finding, '--by', 'sre-kim', '--resolve'], 'owner');
    expect(resolved.code).toBe(0);
    expect(resolved.stdout).toBe(`resolved finding ${ids.finding} (drift on ${WEB}) by sre-kim\n`);
    const after = (await auditJson(['inconsistencies', '--status', 'resolved'])).findings[0];
    // A resolve without a note keeps the note.
    expect(after).toMatchObject({ status: 'resolved', acknowledgedBy: 'sre-kim', note: 'kubectl scale during the incident, approved' });
    expect(after.resolvedAt).not.toBeNull();

    const again = await audit(['ack', ids.finding, '--by', 'sre-sam'], 'owner');
    expect(again.code).toBe(1);
    expect(again.stderr).toContain(`finding ${ids.finding} is resolved already (by sre-kim`);
    const unknown = randomUUID();
    const notThere = await audit(['ack', unknown, '--by', 'sre-sam'], 'owner');
    expect(notThere.code).toBe(1);
    expect(notThere.stderr).toBe(`arbiter: no inconsistency finding with id ${unknown} [INVALID_REQUEST]\n`);
    const notAnId = await audit(['ack', 'drift-1', '--by', 'sre-sam'], 'owner');
    expect(notAnId.code).toBe(1);
    expect(notAnId.stderr).toContain('"drift-1" is not a finding id');
    const noBy = await audit(['ack', ids.finding], 'owner');
    expect(noBy.code).not.toBe(0);
    expect(noBy.stderr).toContain("required option '--by <who>' not specified");
  });

  it('--limit cuts each section and says so; --json and --csv exclude each other', async () => {
    const json = await auditJson(['timeline', '--arn', WEB, '--limit', '3']);
    expect(json.timeline).toHaveLength(3);
    expect(json.truncated).toEqual(['timeline']);
    const table = await audit(['timeline', '--arn', WEB, '--limit', '3']);
    expect(table.stdout).toContain('(the first 3 rows; raise --limit for more)');
    const both = await audit(['contention', '--json', '--csv']);
    expect(both.code).not.toBe(0);
    expect(both.stderr).toContain("option '--json' cannot be used with option '--csv'");
  });
});
