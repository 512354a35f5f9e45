import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deploymentArn, podArn } from '../../tools/fleet/index.ts';
import { startTestEnv, type TestEnv } from '../support/harness.ts';

const API = deploymentArn('payments', 'api');
const TIGHT = deploymentArn('payments', 'tight');

describe('coalescing windows survive a partition move; budgets expire into REJECTED_BUDGET', () => {
  let env: TestEnv;

  beforeAll(async () => {
    env = await startTestEnv({
      workers: 1,
      partitions: 2,
      fleet: {
        deployments: [
          { namespace: 'payments', name: 'api', replicas: 3, minAvailable: 2, revision: 'v1' },
          // Every replica is needed: any drain would breach the budget.
          { namespace: 'payments', name: 'tight', replicas: 2, minAvailable: 2, revision: 'v1' },
        ],
      },
      config: { actions: { restart: { coalesceWindowMs: 120_000 } }, deferral: { recheckMs: 100 } },
    });
  });
  afterAll(async () => env?.stop());

  it('a duplicate arriving after the partition moved to another worker is coalesced into the earlier execution', async () => {
    const agent = await env.client('window-agent');
    const pod = podArn(API, 'api', 1);
    const first = await agent.submitAndWait({ agentId: 'agent-a', resourceArn: pod, action: 'restart' }, { timeoutMs: 60_000 });
    expect(first.status).toBe('EXECUTED');

    // Hand the partitions over: a second worker joins, the first leaves cleanly.
    const second = await env.startWorker();
    await env.workers[0]!.stop('SIGTERM');
    await second.waitReady();

    const duplicate = await agent.submitAndWait({ agentId: 'agent-b', resourceArn: pod, action: 'restart' }, { timeoutMs: 60_000 });
    expect(duplicate.status).toBe('COALESCED');
    expect(duplicate.primaryRequestId).toBe(first.requestId);
    expect(duplicate.workerId).toBe(second.id);
    expect(env.sim.fleet.observe(pod).version).toBe(2); // restarted once, not twice
  });

  it('a drain that would breach the budget is DEFERRED, then REJECTED_BUDGET when its deadline passes', async () => {
    const agent = await env.client('budget-agent');
    const progress: string[] = [];
    const request = await agent.submit({
      agentId: 'drainer',
      resourceArn: podArn(TIGHT, 'tight', 0),
      action: 'drain',
      deadline: Date.now() + 3_000,
    });
    const outcome = await agent.awaitOutcome(request.requestId, { timeoutMs: 60_000, onProgress: (o) => progress.push(o.status) });
    expect(progress).toContain('DEFERRED');
    expect(outcome.status).toBe('REJECTED_BUDGET');
    expect(outcome.detail).toMatch(/below the minimum of 2/);
    expect(env.sim.fleet.observe(podArn(TIGHT, 'tight', 0)).state.ready).toBe(true);
    const { rows } = await env.db.query('SELECT status FROM arbiter.decisions WHERE request_id = $1 ORDER BY decided_at', [request.requestId]);
    expect(rows.map((r) => r.status)).toEqual(['ACCEPTED', 'DEFERRED', 'REJECTED_BUDGET']);
  });
});
