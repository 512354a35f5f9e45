import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deploymentArn, podArn } from '../../tools/fleet/index.ts';
import { eventually, startTestEnv, type TestEnv } from '../support/harness.ts';

/**
 * An owner stopped (SIGSTOP) mid-action for longer than its lease TTL while another owner takes
 * over: the action runs once, the new owner answers from what it observes, and the stalled
 * owner's late result is recorded as abandoned — never as a second answer, never moving the
 * resource's version backwards.
 */

const API = deploymentArn('payments', 'api');
const RESTART_MS = 3_000;
const LOCK_TTL_MS = 2_000;
const SESSION_TIMEOUT_MS = 6_000;

describe('a stalled owner wakes up after its lease ran out', () => {
  let env: TestEnv;
  beforeAll(async () => {
    env = await startTestEnv({
      workers: 2,
      latencyScale: 1,
      fleet: { latencyMs: { restart: RESTART_MS } },
      config: {
        locks: { ttlMs: LOCK_TTL_MS, renewEveryMs: 500, reaperIntervalMs: 500, retryMs: 250 },
        kafka: { sessionTimeoutMs: SESSION_TIMEOUT_MS, heartbeatIntervalMs: 1_000 },
        deferral: { recheckMs: 100, maxDeferMs: 60_000 },
      },
    });
  });
  afterAll(async () => {
    for (const w of env?.workers ?? []) if (w.running()) w.child.kill('SIGCONT');
    await env?.stop();
  });

  it('0 overlaps, one answer from the new owner, the late result recorded as abandoned, version never decreasing', async () => {
    const pod = podArn(API, 'api', 1);
    const client = await env.client('stall-agent');
    const requestId = randomUUID();
    const answered = client.awaitOutcome(requestId, { timeoutMs: 90_000 });
    await client.submit({ requestId, agentId: 'stall-agent', resourceArn: pod, action: 'restart' });
    await eventually(async () => env.sim.fleet.observe(pod).inProgressRequestIds.includes(requestId), 30_000, 'the restart in progress');
    const { rows: lock } = await env.db.query('SELECT owner FROM arbiter.locks WHERE resource_arn = $1', [pod]);
    const stalled = env.workers.find((w) => `worker:${w.id}` === lock[0].owner)!;
    const other = env.workers.find((w) => w !== stalled)!;

    stalled.child.kill('SIGSTOP');
    const outcome = await answered; // the other worker takes the partition over and answers
    expect(outcome.status).toBe('EXECUTED');
    expect(outcome.workerId).toBe(other.id);
    const versionAnswered = env.sim.fleet.observe(pod).version;

    stalled.child.kill('SIGCONT');
    const phases = await eventually(async () => {
      const { rows } = await env.db.query('SELECT phase, worker_id FROM arbiter.executions WHERE request_id = $1 ORDER BY at', [requestId]);
      return rows.some((r) => r.phase === 'abandoned') ? rows : undefined;
    }, 20_000, "the stalled owner's late result recorded as abandoned");
    await sleep(2_000); // time for anything else the woken owner might (wrongly) write

    expect(phases.filter((p) => p.worker_id === stalled.id).map((p) => p.phase)).toEqual(['started', 'abandoned']);
    expect(phases.filter((p) => p.worker_id === other.id).map((p) => p.phase)).toEqual(['recovered']);
    const { rows: finals } = await env.db.query('SELECT worker_id FROM arbiter.decisions WHERE final AND request_id = $1', [requestId]);
    expect(finals).toEqual([{ worker_id: other.id }]);
    expect(env.sim.fleet.stats().executions.restart).toBe(1);
    expect(env.sim.fleet.violations().counts.overlapping_restart).toBe(0);
    const { rows: state } = await env.db.query('SELECT version::int AS version FROM arbiter.resource_state WHERE resource_arn = $1', [pod]);
    expect(state[0].version).toBe(versionAnswered);
    expect(stalled.running()).toBe(true);
  });
});
