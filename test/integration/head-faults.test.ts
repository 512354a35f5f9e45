import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ArbiterClient, type RemediationOutcome } from '../../src/agent-sdk/index.ts';
import { loadConfig, type ConfigInput } from '../../src/config/index.ts';
import { createPool, ensureDatabase, migrate, type Pool } from '../../src/db/index.ts';
import type { ExecuteInput, ExecuteResult, Executor, Observation } from '../../src/executor/index.ts';
import { createLogger } from '../../src/logging/index.ts';
import { Worker } from '../../src/worker/index.ts';
import { removeInstallation, Teardown } from '../support/cleanup.ts';
import { databaseUrlFor, dropDatabase, endpoints, eventually } from '../support/harness.ts';
import { finalsByRequest, readOutcomes } from '../support/outcomes.ts';

/**
 * Faults at the head of the queue, with an in-process worker on the real Kafka, registry and
 * PostgreSQL, and an executor stand-in that misbehaves on purpose.
 */

const DEPLOYMENT = 'arn:aws:k8s:us-east-1:123456789012:cluster/prod/ns/faults/deployment/api';
const pod = (name: string) => `${DEPLOYMENT}/pod/${name}`;

/**
 * An executor that observes a healthy pod and runs whatever `onExecute` says. With
 * `reportsApplied`, its observations list the requests it applied (as a real target's should);
 * without, it is the worst case: a target that cannot tell, so only Arbiter's own records stand
 * between a retry and a second execution.
 */
class ScriptedExecutor implements Executor {
  readonly calls: ExecuteInput[] = [];
  private versions = new Map<string, number>();
  private applied = new Map<string, string[]>();
  constructor(
    private readonly onExecute: (input: ExecuteInput) => Promise<ExecuteResult>,
    private readonly reportsApplied = true,
  ) {}

  async execute(input: ExecuteInput): Promise<ExecuteResult> {
    this.calls.push(input);
    const result = await this.onExecute(input);
    if (result.ok) {
      this.versions.set(input.arn, result.version);
      this.applied.set(input.arn, [...(this.applied.get(input.arn) ?? []), input.requestId]);
    }
    return result;
  }

  async verify(input: ExecuteInput, result: ExecuteResult) {
    return { ok: true, version: result.version, detail: `verified ${input.action}` };
  }

  async observe(arn: string): Promise<Observation> {
    const appliedRequestIds = this.reportsApplied ? (this.applied.get(arn) ?? []) : [];
    return { arn, exists: true, kind: 'unknown', version: this.versions.get(arn) ?? 1, state: {}, appliedRequestIds, inProgressRequestIds: [] };
  }
}

interface Site {
  prefix: string;
  databaseUrl: string;
  db: Pool;
  client: ArbiterClient;
  worker: Worker;
  /** Every outcome published so far, in order (read back from the outcomes topic). */
  outcomes(): Promise<RemediationOutcome[]>;
  close(): Promise<void>;
}

async function startSite(executor: Executor, config: Partial<ConfigInput>): Promise<Site> {
  const suffix = randomUUID().slice(0, 8);
  const prefix = `t-faults-${suffix}`;
  const databaseUrl = databaseUrlFor(`arbiter_faults_${suffix}`);
  const teardown = new Teardown(`fault site ${prefix}`);
  return teardown.guard(async () => {
    teardown.add(() => dropDatabase(databaseUrl));
    await ensureDatabase(databaseUrl);
    await migrate(databaseUrl);
    // The worker and the client create the topics and register the subjects.
    teardown.add(() => removeInstallation(prefix));
    const settings = loadConfig({
      env: { KAFKA_BROKERS: endpoints.kafkaBrokers, SCHEMA_REGISTRY_URL: endpoints.schemaRegistryUrl, DATABASE_URL: databaseUrl },
      overrides: { ...config, kafka: { topicPrefix: prefix, groupId: `g-${suffix}`, requestPartitions: 3 }, worker: { ...(config.worker as object | undefined), id: `w-${suffix}`, metricsPort: 0 } },
    });
    const worker = new Worker(settings, { executor, logger: createLogger({ level: 'silent' }), serveMetrics: false });
    teardown.add(() => worker.stop());
    await worker.start();
    await worker.waitUntilJoined();
    const client = await new ArbiterClient({ brokers: [endpoints.kafkaBrokers], schemaRegistryUrl: endpoints.schemaRegistryUrl, topicPrefix: prefix, clientId: 'faults-agent' }).connect();
    teardown.add(() => client.close());
    const db = createPool(databaseUrl, 2);
    teardown.add(() => db.end());

    return {
      prefix,
      databaseUrl,
      db,
      client,
      worker,
      outcomes: () => readOutcomes(prefix),
      close: () => teardown.undo(),
    };
  });
}

const finalsPerRequest = finalsByRequest;

describe('the lease is lost while the primary runs, and the executor answers anyway', () => {
  let site: Site;
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  let stolen = false;

  beforeAll(async () => {
    const executor = new ScriptedExecutor(async (input) => {
      // Held until the test has attached the followers and taken the lock away.
      await released;
      await eventually(async () => input.signal?.aborted, 10_000, 'the renewal to be refused');
      return { ok: true, version: 2, detail: `${input.action} done` };
    });
    site = await startSite(executor, { locks: { ttlMs: 1_000, renewEveryMs: 100, reaperIntervalMs: 60_000 } });
  });
  afterAll(async () => site?.close());

  // Issue 7's bug: the loss was noticed after the primary had finished, and the followers were told
  // twice (EXECUTED, then FAILED). Now a late answer under a lost lease is never recorded as this
  // attempt's result: the attempt is abandoned, the resource observed, the request found applied —
  // and each follower is told once.
  it('every follower gets exactly one final outcome, and the audit trail one decision each', async () => {
    const arn = pod('api-1');
    const primary = await site.client.submit({ agentId: 'agent-a', resourceArn: arn, action: 'restart' });
    await eventually(async () => (await site.db.query('SELECT 1 FROM arbiter.executions WHERE request_id = $1', [primary.requestId])).rowCount, 30_000, 'the execution to start');
    const followers = await Promise.all(['agent-b', 'agent-c', 'agent-d'].map((agentId) => site.client.submit({ agentId, resourceArn: arn, action: 'restart' })));
    await eventually(
      async () => (await site.db.query("SELECT count(*)::int AS n FROM arbiter.decisions WHERE primary_request_id = $1 AND status = 'COALESCED'", [primary.requestId])).rows[0].n === 3,
      30_000,
      'three followers coalesced in flight',
    );
    // Someone takes the lease over while the action runs: the worker's next renewal is refused.
    const { rowCount } = await site.db.query("UPDATE arbiter.locks SET owner = 'thief', fencing_token = fencing_token + 1 WHERE resource_arn = $1 AND owner LIKE 'worker:%'", [arn]);
    expect(rowCount).toBe(1);
    stolen = true;
    release();

    const ids = [primary.requestId, ...followers.map((f) => f.requestId)];
    await Promise.all(ids.map((id) => site.client.awaitOutcome(id, { timeoutMs: 60_000 })));
    await sleep(1_500); // room for a second, contradictory answer to arrive, as it did before the fix
    const finals = finalsPerRequest(await site.outcomes());
    expect(stolen).toBe(true);
    expect(finals.get(primary.requestId)!.map((o) => o.status)).toEqual(['EXECUTED']);
    expect(finals.get(primary.requestId)![0]!.detail).toMatch(/verified by observation/);
    const { rows: phases } = await site.db.query('SELECT phase FROM arbiter.executions WHERE request_id = $1 ORDER BY at', [primary.requestId]);
    expect(phases.map((p) => p.phase)).toEqual(['started', 'abandoned', 'recovered']);
    for (const f of followers) {
      expect(finals.get(f.requestId)!.map((o) => [o.status, o.primaryRequestId])).toEqual([['COALESCED', primary.requestId]]);
      expect(finals.get(f.requestId)![0]!.detail).toContain('which ended EXECUTED');
    }
    const { rows } = await site.db.query('SELECT request_id, count(*)::int AS n FROM arbiter.decisions WHERE final AND request_id = ANY($1::uuid[]) GROUP BY 1', [ids]);
    expect(new Map(rows.map((r) => [r.request_id, r.n]))).toEqual(new Map(ids.map((id) => [id, 1])));
    // The loss is on record in the lock log.
    const { rows: lost } = await site.db.query("SELECT count(*)::int AS n FROM arbiter.lock_events WHERE resource_arn = $1 AND event = 'lost'", [arn]);
    expect(lost[0].n).toBeGreaterThanOrEqual(1);
  });
});

describe('followers beyond the memory budget wait in PostgreSQL and are read back when the primary ends', () => {
  let site: Site;
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));

  beforeAll(async () => {
    const executor = new ScriptedExecutor(async (input) => {
      await released;
      return { ok: true, version: 2, detail: `${input.action} done` };
    });
    // Two followers at most in memory per partition: the third makes its primary spill.
    site = await startSite(executor, { worker: { maxWaitingFollowersPerPartition: 2 } });
  });
  afterAll(async () => site?.close());

  it('every follower gets exactly one final outcome, the primary\'s, though memory held none of them at the end', async () => {
    const arn = pod('api-spill');
    const primary = await site.client.submit({ agentId: 'agent-a', resourceArn: arn, action: 'restart' });
    await eventually(async () => (await site.db.query('SELECT 1 FROM arbiter.executions WHERE request_id = $1', [primary.requestId])).rowCount, 30_000, 'the execution to start');
    const agents = ['b', 'c', 'd', 'e', 'f', 'g'].map((x) => `agent-${x}`);
    const followers = [];
    for (const agentId of agents) followers.push(await site.client.submit({ agentId, resourceArn: arn, action: 'restart' }));
    await eventually(
      async () => (await site.db.query('SELECT count(*)::int AS n FROM arbiter.duplicates WHERE primary_request_id = $1 AND in_flight', [primary.requestId])).rows[0].n === agents.length,
      30_000,
      'six followers waiting in flight',
    );
    // The primary spilled: none of its followers is held in memory any more.
    const waiting = async () => (await site.worker.metrics.registry.getSingleMetricAsString('arbiter_waiting_followers')).match(/^arbiter_waiting_followers (\d+)/m)?.[1];
    await eventually(async () => (await waiting()) === '0', 10_000, 'the gauge to show no follower in memory');
    release();

    const ids = [primary.requestId, ...followers.map((f) => f.requestId)];
    await Promise.all(ids.map((id) => site.client.awaitOutcome(id, { timeoutMs: 60_000 })));
    // A duplicate after the end is answered at once from the window, not read back.
    const late = await site.client.submit({ agentId: 'agent-h', resourceArn: arn, action: 'restart' });
    await site.client.awaitOutcome(late.requestId, { timeoutMs: 30_000 });
    await sleep(1_000); // room for a second answer to arrive, were one sent
    const finals = finalsPerRequest(await site.outcomes());
    expect(finals.get(primary.requestId)!.map((o) => o.status)).toEqual(['EXECUTED']);
    for (const f of [...followers, late]) {
      expect(finals.get(f.requestId)!.map((o) => [o.status, o.primaryRequestId, o.agentId])).toEqual([['COALESCED', primary.requestId, f.agentId]]);
    }
    expect(finals.get(followers[0]!.requestId)![0]!.detail).toContain('which ended EXECUTED');
    // The primary's outbox row covers the followers read back: once they are answered, nothing is left for the sweep.
    const { rows } = await site.db.query('SELECT count(*)::int AS n FROM arbiter.outcome_outbox WHERE request_id = $1', [primary.requestId]);
    expect(rows[0].n).toBe(0);
  });
});

describe('an executor that throws an unexpected error on every call', () => {
  let site: Site;
  let executor: ScriptedExecutor;

  beforeAll(async () => {
    executor = new ScriptedExecutor(async () => {
      throw new TypeError('executor bug: cannot read properties of undefined');
    });
    site = await startSite(executor, { retries: { maxAttempts: 3, backoffMs: 100, maxBackoffMs: 200 }, deferral: { recheckMs: 50 } });
  });
  afterAll(async () => site?.close());

  it('ends the request FAILED after the configured attempts: audited, and the outcome published once', async () => {
    const request = await site.client.submit({ agentId: 'agent-a', resourceArn: pod('api-2'), action: 'restart' });
    const outcome = await site.client.awaitOutcome(request.requestId, { timeoutMs: 60_000 });
    expect(outcome.status).toBe('FAILED');
    expect(outcome.detail).toContain('failed after 3 attempt(s) with an unexpected error: executor bug');
    expect(executor.calls.filter((c) => c.requestId === request.requestId)).toHaveLength(3);

    const { rows: decisions } = await site.db.query('SELECT status, rule, final FROM arbiter.decisions WHERE request_id = $1 ORDER BY decided_at', [request.requestId]);
    expect(decisions).toEqual([
      { status: 'ACCEPTED', rule: 'accept', final: false },
      { status: 'DEFERRED', rule: 'error', final: false },
      { status: 'FAILED', rule: 'error', final: true },
    ]);
    const { rows: phases } = await site.db.query('SELECT phase FROM arbiter.executions WHERE request_id = $1 ORDER BY at', [request.requestId]);
    expect(phases.map((p) => p.phase)).toEqual(['started', 'abandoned', 'started', 'abandoned', 'started', 'abandoned']);
    await sleep(500);
    const finals = finalsPerRequest(await site.outcomes());
    expect(finals.get(request.requestId)!.map((o) => o.status)).toEqual(['FAILED']);
  });
});

describe('the database connection is terminated right after each executor success', () => {
  let site: Site;
  let executor: ScriptedExecutor;
  let terminated = 0;
  // A connection of our own (another application_name), so it is not among those it terminates.
  const killer = new pg.Pool({ connectionString: databaseUrlFor('postgres'), max: 1, application_name: 'terminator' });

  beforeAll(async () => {
    executor = new ScriptedExecutor(async (input) => {
      const { rowCount } = await killer.query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND application_name = 'arbiter'",
        [new URL(site.databaseUrl).pathname.slice(1)],
      );
      terminated += rowCount ?? 0;
      return { ok: true, version: 2, detail: `${input.action} done` };
    }, false);
    site = await startSite(executor, { retries: { maxAttempts: 3, backoffMs: 50, maxBackoffMs: 200 }, deferral: { recheckMs: 50 } });
  });
  afterAll(async () => {
    await site?.close();
    await killer.end();
  });

  it('200 requests: 200 EXECUTED, 0 FAILED, none executed twice', async () => {
    const arns = Array.from({ length: 200 }, (_, i) => `${DEPLOYMENT.replace('/api', `/svc-${i % 20}`)}/pod/p-${i}`);
    const requests = await site.client.submitMany(arns.map((arn) => ({ agentId: 'agent-a', resourceArn: arn, action: 'restart' })));
    const outcomes = await Promise.all(requests.map((r) => site.client.awaitOutcome(r.requestId, { timeoutMs: 120_000 })));
    expect(outcomes.filter((o) => o.status !== 'EXECUTED').map((o) => `${o.status}: ${o.detail}`)).toEqual([]);
    expect(terminated).toBeGreaterThanOrEqual(200); // the fault really happened every time
    const calls = new Map<string, number>();
    for (const c of executor.calls) calls.set(c.requestId, (calls.get(c.requestId) ?? 0) + 1);
    expect([...calls.values()].filter((n) => n !== 1)).toEqual([]);
    expect(calls.size).toBe(200);
    const { rows } = await site.db.query("SELECT status, count(*)::int AS n FROM arbiter.decisions WHERE final GROUP BY 1");
    expect(rows).toEqual([{ status: 'EXECUTED', n: 200 }]);
    // An execution's lease is released by the statement that finally recorded its decision, however
    // many attempts that took: none left held or left to expire, each resource's last lock event a
    // release. (A release refused by a terminated connection leaves the lock to this worker's next
    // attempt, which takes it over with a new token: that is why acquisitions can outnumber releases.)
    const { rows: locks } = await site.db.query(
      `SELECT count(*) FILTER (WHERE owner IS NOT NULL)::int AS held,
              (SELECT count(*)::int FROM arbiter.lock_events WHERE resource_arn = ANY($1::text[]) AND event = 'expired') AS expired,
              (SELECT count(*)::int FROM (SELECT DISTINCT ON (resource_arn) event FROM arbiter.lock_events
                                          WHERE resource_arn = ANY($1::text[]) ORDER BY resource_arn, at DESC) last
                WHERE event = 'released') AS last_released
         FROM arbiter.locks WHERE resource_arn = ANY($1::text[])`,
      [arns],
    );
    expect(locks[0]).toEqual({ held: 0, expired: 0, last_released: 200 });
  }, 180_000);
});

describe('an outcome left unpublished (a publish that failed, a backlog that overflowed)', () => {
  let site: Site;
  beforeAll(async () => {
    const executor = new ScriptedExecutor(async (input) => ({ ok: true, version: 2, detail: `${input.action} done` }));
    site = await startSite(executor, { worker: { outboxSweepMs: 1_000 }, locks: { reaperIntervalMs: 200 } });
  });
  afterAll(async () => site?.close());

  it('is published from PostgreSQL by the outbox sweep', async () => {
    const request = await site.client.submit({ agentId: 'agent-a', resourceArn: pod('api-sweep'), action: 'restart' });
    expect((await site.client.awaitOutcome(request.requestId, { timeoutMs: 30_000 })).status).toBe('EXECUTED');
    // As if the publish had failed: the answer back in the outbox, a few seconds old.
    await site.db.query(
      `INSERT INTO arbiter.outcome_outbox (request_id, topic, kafka_partition, finished_at)
       SELECT request_id, topic, kafka_partition, now() - interval '5 seconds' FROM arbiter.request_state WHERE request_id = $1`,
      [request.requestId],
    );
    await eventually(
      async () => (await site.db.query('SELECT count(*)::int AS n FROM arbiter.outcome_outbox WHERE request_id = $1', [request.requestId])).rows[0].n === 0,
      15_000,
      'the sweep to publish it and take it out of the outbox',
    );
    const finals = finalsPerRequest(await site.outcomes()).get(request.requestId)!;
    expect(finals.map((o) => o.status)).toEqual(['EXECUTED', 'EXECUTED']); // the original answer, and the sweep's
  });
});
