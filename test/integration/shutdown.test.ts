import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deploymentArn, podArn } from '../../tools/fleet/index.ts';
import { eventually, startTestEnv, type TestEnv, type WorkerProcess } from '../support/harness.ts';

/**
 * SIGTERM while an action runs (worker processes, the simulated fleet in real time): the worker
 * waits for the action up to worker.shutdownTimeoutMs; past that it aborts the executor call and
 * leaves the request for the next owner; a second SIGTERM exits at once.
 */

const API = deploymentArn('payments', 'api');

async function startRestart(env: TestEnv, pod: string): Promise<{ requestId: string; owner: WorkerProcess }> {
  const client = await env.client('shutdown-agent');
  const requestId = randomUUID();
  await client.submit({ requestId, agentId: 'shutdown-agent', resourceArn: pod, action: 'restart' });
  await eventually(async () => env.sim.fleet.observe(pod).inProgressRequestIds.includes(requestId), 30_000, 'the restart in progress on the fleet');
  const { rows } = await env.db.query('SELECT owner FROM arbiter.locks WHERE resource_arn = $1', [pod]);
  const owner = env.workers.find((w) => `worker:${w.id}` === rows[0]?.owner);
  if (!owner) throw new Error(`no worker holds the lock on ${pod} (${rows[0]?.owner})`);
  return { requestId, owner };
}

const phases = async (env: TestEnv, requestId: string) =>
  (await env.db.query('SELECT phase, worker_id FROM arbiter.executions WHERE request_id = $1 ORDER BY at', [requestId])).rows.map((r) => [r.phase, r.worker_id]);

describe('SIGTERM with time to finish (shutdownTimeoutMs 20 s, a 3 s restart)', () => {
  let env: TestEnv;
  beforeAll(async () => {
    env = await startTestEnv({
      workers: 1,
      latencyScale: 1,
      fleet: { latencyMs: { restart: 3_000 } },
      config: { worker: { shutdownTimeoutMs: 20_000 }, deferral: { recheckMs: 100 } },
    });
  });
  afterAll(async () => env?.stop());

  it('waits for the running action, answers it, and exits 0', async () => {
    const pod = podArn(API, 'api', 0);
    const client = await env.client('shutdown-agent');
    const { requestId, owner } = await startRestart(env, pod);
    const outcome = client.awaitOutcome(requestId, { timeoutMs: 30_000 });
    const signalledAt = Date.now();
    owner.child.kill('SIGTERM');
    expect(await owner.exited).toBe(0);
    const drainMs = Date.now() - signalledAt;

    expect((await outcome).status).toBe('EXECUTED');
    expect((await outcome).workerId).toBe(owner.id);
    expect(await phases(env, requestId)).toEqual([
      ['started', owner.id],
      ['succeeded', owner.id],
    ]);
    expect(env.sim.fleet.stats().executions.restart).toBe(1);
    expect(drainMs).toBeLessThan(20_000);
    const { rows } = await env.db.query('SELECT owner FROM arbiter.locks WHERE resource_arn = $1', [pod]);
    expect(rows[0].owner).toBeNull(); // released after the answer
  });

  it('a second SIGTERM exits in under 1 s, without waiting for the action', async () => {
    const second = await env.startWorker();
    const pod = podArn(API, 'api', 1);
    const { owner } = await startRestart(env, pod);
    expect(owner).toBe(second);
    owner.child.kill('SIGTERM');
    await sleep(300);
    expect(owner.running()).toBe(true); // draining: waiting for the 3 s restart
    const secondSignalAt = Date.now();
    owner.child.kill('SIGTERM');
    const code = await owner.exited;
    const exitMs = Date.now() - secondSignalAt;
    expect(code).toBe(143);
    expect(exitMs).toBeLessThan(1_000);
  });
});

describe('SIGTERM past the deadline (shutdownTimeoutMs 1 s, an 8 s restart)', () => {
  let env: TestEnv;
  beforeAll(async () => {
    env = await startTestEnv({
      workers: 1,
      latencyScale: 1,
      fleet: { latencyMs: { restart: 8_000 } },
      config: {
        worker: { shutdownTimeoutMs: 1_000 },
        locks: { ttlMs: 3_000, reaperIntervalMs: 500, retryMs: 250 },
        deferral: { recheckMs: 100, maxDeferMs: 60_000 },
      },
    });
  });
  afterAll(async () => env?.stop());

  it('aborts the executor call, leaves the request open for the next owner, which finishes it without running it again', async () => {
    const pod = podArn(API, 'api', 2);
    const client = await env.client('shutdown-agent');
    const { requestId, owner } = await startRestart(env, pod);
    const outcome = client.awaitOutcome(requestId, { timeoutMs: 60_000 });
    const signalledAt = Date.now();
    owner.child.kill('SIGTERM');
    expect(await owner.exited).toBe(0);
    expect(Date.now() - signalledAt).toBeLessThan(6_000); // 1 s deadline, then abort and close
    expect(env.sim.fleet.observe(pod).inProgressRequestIds).toContain(requestId); // still running on the fleet

    // Recorded for the next owner: open, the attempt abandoned, the lock left to its TTL.
    const { rows: state } = await env.db.query('SELECT final FROM arbiter.request_state WHERE request_id = $1', [requestId]);
    expect(state[0].final).toBe(false);
    const abandoned = await phases(env, requestId);
    expect(abandoned).toEqual([
      ['started', owner.id],
      ['abandoned', owner.id],
    ]);
    const { rows: detail } = await env.db.query("SELECT detail FROM arbiter.executions WHERE request_id = $1 AND phase = 'abandoned'", [requestId]);
    expect(detail[0].detail).toMatch(/shutting down/);
    const { rows: lock } = await env.db.query('SELECT owner FROM arbiter.locks WHERE resource_arn = $1', [pod]);
    expect(lock[0].owner).toBe(`worker:${owner.id}`);

    const next = await env.startWorker();
    const final = await outcome;
    expect(final.status).toBe('EXECUTED');
    expect(final.workerId).toBe(next.id);
    expect(final.detail).toMatch(/verified by observation/);
    expect(env.sim.fleet.stats().executions.restart).toBe(1);
    const { rows: finals } = await env.db.query('SELECT count(*)::int AS n FROM arbiter.decisions WHERE final AND request_id = $1', [requestId]);
    expect(finals[0].n).toBe(1);
  });
});
