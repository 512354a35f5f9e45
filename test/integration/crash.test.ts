import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ArbiterLocks, type RemediationOutcome } from '../../src/agent-sdk/index.ts';
import { deploymentArn, podArn } from '../../tools/fleet/index.ts';
import { eventually, startTestEnv, type TestEnv, type WorkerProcess } from '../support/harness.ts';
import { finalDecisionCounts, violationCounts } from '../support/races.ts';

const API = deploymentArn('payments', 'api');
const RESTART_MS = 3_000;
const LOCK_TTL_MS = 4_000;
const SESSION_TIMEOUT_MS = 6_000;
/** What a kill may cost at most: the group noticing the dead member, its lease running out, and slack for rebalance and recovery. */
const RECOVERY_BOUND_MS = SESSION_TIMEOUT_MS + LOCK_TTL_MS + 10_000;

const NO_VIOLATIONS = {
  overlapping_restart: 0,
  lost_hotfix: 0,
  below_min_available: 0,
  terminate_before_drain: 0,
  concurrent_conflicting_changes: 0,
  duplicate_execution: 0,
};

describe('a worker SIGKILLed while it owns a request: exactly one outcome, never a second execution', () => {
  let env: TestEnv;
  let agentLocks: ArbiterLocks;

  beforeAll(async () => {
    env = await startTestEnv({
      workers: 2,
      // Real time (scale 1), with a slow restart so the kill lands mid-action.
      latencyScale: 1,
      fleet: { latencyMs: { restart: RESTART_MS } },
      config: {
        locks: { ttlMs: LOCK_TTL_MS, reaperIntervalMs: 500, retryMs: 250 },
        kafka: { sessionTimeoutMs: SESSION_TIMEOUT_MS, heartbeatIntervalMs: 1_000 },
        deferral: { maxDeferMs: 60_000, recheckMs: 100 },
      },
    });
    agentLocks = new ArbiterLocks(env.databaseUrl, 'crash-test-operator');
  });
  afterAll(async () => {
    await agentLocks?.close();
    await env?.stop();
  });

  const alive = () => env.workers.filter((w) => w.child.exitCode === null && w.child.signalCode === null);
  const workerById = (id: string): WorkerProcess => {
    const worker = env.workers.find((w) => w.id === id);
    if (!worker) throw new Error(`no worker ${id} among ${env.workers.map((w) => w.id).join(', ')}`);
    return worker;
  };

  it('killed mid-restart: the survivor finds the restart applied, records it recovered, and never runs it again', async () => {
    expect(alive()).toHaveLength(2);
    const pod = podArn(API, 'api', 0);
    const client = await env.client('crash-agent');
    const requestId = randomUUID();
    const final = client.awaitOutcome(requestId, { timeoutMs: 90_000 });
    await client.submit({ requestId, agentId: 'crash-agent', resourceArn: pod, action: 'restart' });

    // The restart is running on the fleet; whoever holds the pod's lock is the worker running it.
    await eventually(async () => env.sim.fleet.observe(pod).inProgressRequestIds.includes(requestId), 30_000, 'the restart in progress on the fleet');
    const { rows: lock } = await env.db.query('SELECT owner, fencing_token::int AS token FROM arbiter.locks WHERE resource_arn = $1', [pod]);
    expect(lock[0].owner).toMatch(/^worker:/);
    const victim = workerById(lock[0].owner.slice('worker:'.length));
    const survivor = alive().find((w) => w !== victim)!;

    const killedAt = Date.now();
    await victim.stop('SIGKILL');
    expect(env.sim.fleet.observe(pod).inProgressRequestIds).toContain(requestId);

    const outcome = await final;
    const killToOutcomeMs = Date.now() - killedAt;
    const { rows: phases } = await env.db.query('SELECT phase, worker_id, at FROM arbiter.executions WHERE request_id = $1 ORDER BY at', [requestId]);
    const recoveredAfterMs = phases.find((p) => p.phase === 'recovered') ? (phases.find((p) => p.phase === 'recovered')!.at as Date).getTime() - killedAt : NaN;
    console.log(
      `crash mid-action: restart ${RESTART_MS} ms, lock TTL ${LOCK_TTL_MS} ms, session timeout ${SESSION_TIMEOUT_MS} ms → ` +
        `kill to 'recovered' row ${recoveredAfterMs} ms, kill to final outcome at the agent ${killToOutcomeMs} ms (bound ${RECOVERY_BOUND_MS} ms)`,
    );

    // One outcome, EXECUTED, decided by the survivor from what it observed.
    expect(outcome.status).toBe('EXECUTED');
    expect(outcome.workerId).toBe(survivor.id);
    expect(outcome.detail).toMatch(/verified by observation/);
    expect(killToOutcomeMs).toBeLessThan(RECOVERY_BOUND_MS);
    expect((await finalDecisionCounts(env.db, [requestId])).get(requestId)).toBe(1);
    const { rows: decisions } = await env.db.query('SELECT status, final, worker_id FROM arbiter.decisions WHERE request_id = $1 ORDER BY decided_at', [requestId]);
    expect(decisions).toEqual([
      { status: 'ACCEPTED', final: false, worker_id: victim.id },
      { status: 'EXECUTED', final: true, worker_id: survivor.id },
    ]);
    expect(phases.map((p) => [p.phase, p.worker_id])).toEqual([
      ['started', victim.id],
      ['recovered', survivor.id],
    ]);

    // The fleet ran it exactly once.
    expect(env.sim.fleet.stats().executions.restart).toBe(1);
    const observed = env.sim.fleet.observe(pod);
    expect(observed.appliedRequestIds.filter((id) => id === requestId)).toHaveLength(1);
    expect(observed.state.restarts).toBe(1);
    expect(outcome.resourceVersion).toBe(observed.version);
    expect(violationCounts(env.sim.fleet)).toEqual(NO_VIOLATIONS);

    // The dead worker's lease ran out unreleased, and the reaper said so.
    const expiry = await eventually(async () => {
      const { rows } = await env.db.query('SELECT owner, fencing_token::int AS token FROM arbiter.ttl_expirations WHERE resource_arn = $1', [pod]);
      return rows[0];
    }, 15_000, 'the expiry of the dead worker’s lease');
    expect(expiry).toEqual({ owner: `worker:${victim.id}`, token: lock[0].token });
  });

  it('killed after accepting but before executing (deferred on an agent-held lock): the next owner executes it exactly once', async () => {
    // Back to two workers.
    await env.startWorker();
    expect(alive()).toHaveLength(2);
    const pod = podArn(API, 'api', 1);
    const held = await agentLocks.acquire(pod, 60_000);
    if (!held.acquired) throw new Error('expected to acquire a free lock');

    const client = await env.client('crash-agent-2');
    const requestId = randomUUID();
    const progress: RemediationOutcome[] = [];
    const final = client.awaitOutcome(requestId, { timeoutMs: 90_000, onProgress: (o) => progress.push(o) });
    await client.submit({ requestId, agentId: 'crash-agent-2', resourceArn: pod, action: 'restart' });
    const deferred = await eventually(async () => progress.find((p) => p.status === 'DEFERRED'), 30_000, 'a DEFERRED progress outcome');
    expect(deferred.detail).toMatch(/locked by crash-test-operator/);
    const victim = workerById(deferred.workerId!);
    const survivor = alive().find((w) => w !== victim)!;

    const killedAt = Date.now();
    await victim.stop('SIGKILL');
    expect(await agentLocks.release(pod, held.fencingToken)).toBe(true);

    const outcome = await final;
    const killToOutcomeMs = Date.now() - killedAt;
    const { rows: started } = await env.db.query("SELECT at FROM arbiter.executions WHERE request_id = $1 AND phase = 'started'", [requestId]);
    const killToStartedMs = started[0] ? (started[0].at as Date).getTime() - killedAt : NaN;
    console.log(
      `crash before execution: kill to the survivor starting the restart ${killToStartedMs} ms, ` +
        `kill to final outcome at the agent ${killToOutcomeMs} ms (includes the ${RESTART_MS} ms restart; bound ${RECOVERY_BOUND_MS} ms)`,
    );

    expect(outcome.status).toBe('EXECUTED');
    expect(outcome.workerId).toBe(survivor.id);
    expect(outcome.fencingToken).toBeGreaterThan(held.fencingToken);
    expect(killToOutcomeMs).toBeLessThan(RECOVERY_BOUND_MS);
    expect((await finalDecisionCounts(env.db, [requestId])).get(requestId)).toBe(1);
    const { rows: decisions } = await env.db.query('SELECT status, final, worker_id FROM arbiter.decisions WHERE request_id = $1 ORDER BY decided_at', [requestId]);
    expect(decisions).toEqual([
      { status: 'ACCEPTED', final: false, worker_id: victim.id },
      { status: 'DEFERRED', final: false, worker_id: victim.id },
      { status: 'EXECUTED', final: true, worker_id: survivor.id },
    ]);
    const { rows: phases } = await env.db.query('SELECT phase, worker_id FROM arbiter.executions WHERE request_id = $1 ORDER BY at', [requestId]);
    expect(phases).toEqual([
      { phase: 'started', worker_id: survivor.id },
      { phase: 'succeeded', worker_id: survivor.id },
    ]);

    const observed = env.sim.fleet.observe(pod);
    expect(observed.appliedRequestIds.filter((id) => id === requestId)).toHaveLength(1);
    expect(observed.state.restarts).toBe(1);
    expect(env.sim.fleet.stats().executions.restart).toBe(2);
    expect(violationCounts(env.sim.fleet)).toEqual(NO_VIOLATIONS);
  });
});
