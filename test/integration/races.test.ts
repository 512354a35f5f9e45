import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ArbiterClient, RemediationOutcome, RequestInput } from '../../src/agent-sdk/index.ts';
import { startTestEnv, type TestEnv } from '../support/harness.ts';
import {
  DRAIN_DEPLOYMENT,
  DRAIN_MIN_AVAILABLE,
  DRAIN_REPLICAS,
  OutcomeTap,
  RACE_FLEET,
  RESTART_POD,
  REVISION_DEPLOYMENT,
  drainPod,
  drainStorm,
  finalDecisionCounts,
  finalDecisions,
  restartStorm,
  revisionStorm,
  sampleAvailable,
  tally,
  violationCounts,
} from '../support/races.ts';

/** Agent processes: each has its own producer and its own outcome watcher (consumer group). */
const AGENTS = 25;

interface Run {
  input: RequestInput;
  requestId: string;
  outcome: RemediationOutcome;
  /** Progress outcomes (DEFERRED) the agent's SDK reported. */
  progress: RemediationOutcome[];
}

describe('the seed races through Arbiter: 2 worker processes, 20+ concurrent agents per race', () => {
  let env: TestEnv;
  let tap: OutcomeTap;
  let clients: ArbiterClient[];

  beforeAll(async () => {
    env = await startTestEnv({
      workers: 2,
      fleet: RACE_FLEET,
      latencyScale: 0.2,
      config: {
        // Drains wait for capacity to return (replacement takes ~300 ms at this scale): wait generously, look often.
        deferral: { maxDeferMs: 90_000, recheckMs: 100 },
        locks: { retryMs: 200 },
      },
    });
    tap = await new OutcomeTap(env.prefix).start();
    clients = await Promise.all(Array.from({ length: AGENTS }, (_, i) => env.client(`race-agent-process-${i}`)));
  }, 180_000);

  afterAll(async () => {
    await tap?.stop();
    await env?.stop();
  });

  /** Every agent submits at once (Promise.all) through its own client and waits for its final outcome. */
  async function storm(inputs: RequestInput[]): Promise<Run[]> {
    return Promise.all(
      inputs.map(async (input, i) => {
        const client = clients[i % clients.length]!;
        const requestId = randomUUID();
        const progress: RemediationOutcome[] = [];
        // Wait first, then submit: no progress outcome can slip between the two.
        const outcome = client.awaitOutcome(requestId, { timeoutMs: 100_000, onProgress: (o) => progress.push(o) });
        await client.submit({ ...input, requestId });
        return { input, requestId, outcome: await outcome, progress };
      }),
    );
  }

  /** The invariants every race must keep: one final outcome per request everywhere, and a coherent fleet. */
  async function expectExactlyOneFinalEach(runs: Run[]): Promise<void> {
    const ids = runs.map((r) => r.requestId);
    expect(new Set(ids).size).toBe(runs.length);
    for (const run of runs) {
      expect(run.outcome.requestId).toBe(run.requestId);
      expect(run.outcome.final).toBe(true);
      expect(run.outcome.agentId).toBe(run.input.agentId);
    }
    // The topic: exactly one final outcome record per request (the SDK would hide duplicates), the one the SDK returned.
    await tap.waitForFinals(ids);
    for (const run of runs) {
      const finals = tap.finals(run.requestId);
      expect(finals.map((f) => f.status), `final outcome records of ${run.requestId}`).toEqual([run.outcome.status]);
    }
    // Postgres: exactly one final decision per request, with the status the agent was told.
    const counts = await finalDecisionCounts(env.db, ids);
    expect([...counts.entries()].filter(([, n]) => n !== 1), 'requests without exactly one final decision').toEqual([]);
    const decisions = await finalDecisions(env.db, ids);
    for (const run of runs) expect(decisions.get(run.requestId)?.status).toBe(run.outcome.status);
    // The fleet witnessed nothing incoherent, of any kind.
    expect(violationCounts(env.sim.fleet)).toEqual({
      overlapping_restart: 0,
      lost_hotfix: 0,
      below_min_available: 0,
      terminate_before_drain: 0,
      concurrent_conflicting_changes: 0,
      duplicate_execution: 0,
    });
  }

  it('25 agents restart the same pod at once: one EXECUTED, 24 COALESCED into it, one restart on the fleet', async () => {
    const before = env.sim.fleet.stats().executions.restart ?? 0;
    const runs = await storm(restartStorm(25));

    const statuses = tally(runs.map((r) => r.outcome.status));
    expect(statuses).toEqual({ EXECUTED: 1, COALESCED: 24 });
    const executed = runs.find((r) => r.outcome.status === 'EXECUTED')!;
    for (const run of runs.filter((r) => r !== executed)) {
      expect(run.outcome.primaryRequestId).toBe(executed.requestId);
      expect(run.outcome.resourceVersion).toBe(executed.outcome.resourceVersion);
    }
    expect(executed.outcome.fencingToken).toBeGreaterThan(0);

    // The fleet restarted the pod once, for the executed request only.
    expect((env.sim.fleet.stats().executions.restart ?? 0) - before).toBe(1);
    const pod = env.sim.fleet.observe(RESTART_POD);
    expect(pod.state.restarts).toBe(1);
    expect(pod.appliedRequestIds.filter((id) => runs.some((r) => r.requestId === id))).toEqual([executed.requestId]);
    expect(pod.version).toBe(executed.outcome.resourceVersion);

    // The audit trail: one started+succeeded execution, and the coalescing view names 24 agents.
    const { rows: executions } = await env.db.query('SELECT request_id, phase FROM arbiter.executions WHERE resource_arn = $1 ORDER BY at', [RESTART_POD]);
    expect(executions).toEqual([
      { request_id: executed.requestId, phase: 'started' },
      { request_id: executed.requestId, phase: 'succeeded' },
    ]);
    const { rows: coalescing } = await env.db.query('SELECT coalesced::int, cardinality(agents) AS agents FROM arbiter.coalescing WHERE primary_request_id = $1', [
      executed.requestId,
    ]);
    expect(coalescing).toEqual([{ coalesced: 24, agents: 24 }]);

    await expectExactlyOneFinalEach(runs);
  });

  it('11 agents roll back and 11 hotfix the same deployment, all based on the version they observed: one EXECUTED, 21 rejected, no hotfix lost', async () => {
    // A release first (through Arbiter too), so there is a revision to roll back to.
    const release = await clients[0]!.submitAndWait(
      { agentId: 'release-bot', resourceArn: REVISION_DEPLOYMENT, action: 'deploy', params: { revision: 'v2' } },
      { timeoutMs: 60_000 },
    );
    expect(release.status).toBe('EXECUTED');

    // Every agent reads the deployment before deciding, and says which version its change is based on.
    const observed = env.sim.fleet.observe(REVISION_DEPLOYMENT);
    expect(observed.version).toBe(2);
    expect(observed.state.history).toEqual(['v1']);
    const inputs = revisionStorm(22, observed.version);
    expect(tally(inputs.map((i) => i.action))).toEqual({ hotfix: 11, rollback: 11 });
    const runs = await storm(inputs);

    const executed = runs.filter((r) => r.outcome.status === 'EXECUTED');
    expect(executed).toHaveLength(1);
    const winner = executed[0]!;
    const losers = runs.filter((r) => r !== winner);
    expect(losers).toHaveLength(21);
    for (const loser of losers) {
      expect(['REJECTED_STALE', 'REJECTED_CONFLICT']).toContain(loser.outcome.status);
      // The agent is told the version to re-observe from.
      expect(loser.outcome.resourceVersion).toBe(3);
      expect(loser.outcome.detail).toMatch(/re-observe/);
    }

    // The fleet applied exactly the winner, once, and its revision is what the winner asked for.
    const after = env.sim.fleet.observe(REVISION_DEPLOYMENT);
    expect(after.version).toBe(3);
    expect(winner.outcome.resourceVersion).toBe(3);
    expect(after.appliedRequestIds.filter((id) => runs.some((r) => r.requestId === id))).toEqual([winner.requestId]);
    if (winner.input.action === 'hotfix') {
      expect(after.state.revision).toBe('v2+hotfix.1');
      expect((after.state.hotfixes as Array<{ patch: string }>).map((h) => h.patch)).toEqual([winner.input.params!.patch]);
    } else {
      expect(after.state.revision).toBe('v1');
    }

    const { rows: conflicts } = await env.db.query('SELECT count(*)::int AS n FROM arbiter.conflicts WHERE request_id = ANY($1::uuid[])', [
      losers.map((r) => r.requestId),
    ]);
    expect(conflicts).toEqual([{ n: 21 }]);

    await expectExactlyOneFinalEach([...runs]);
    expect(violationCounts(env.sim.fleet).lost_hotfix).toBe(0);
  });

  it('24 agents drain every replica of a deployment (6 per pod): capacity never below the minimum, every drain done', async () => {
    const minAvailable = env.sim.fleet.observe(DRAIN_DEPLOYMENT).workload!.minAvailable;
    expect(minAvailable).toBe(DRAIN_MIN_AVAILABLE);
    const sampler = sampleAvailable(env.sim.fleet, DRAIN_DEPLOYMENT);
    const runs = await storm(drainStorm(24));
    // Replacement of the last drained pod finishes after its outcome: keep sampling until all are back.
    await (async () => {
      const until = Date.now() + 10_000;
      while (Date.now() < until && (env.sim.fleet.observe(DRAIN_DEPLOYMENT).state.available as number) < DRAIN_REPLICAS) {
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    const { lowest, samples } = sampler.stop();

    // Never below the minimum, and the drains really did take it down to the minimum (the sampler saw them).
    expect(samples).toBeGreaterThan(20);
    expect(lowest).toBe(DRAIN_MIN_AVAILABLE);
    expect(env.sim.fleet.observe(DRAIN_DEPLOYMENT).state.available).toBe(DRAIN_REPLICAS);
    expect(violationCounts(env.sim.fleet).below_min_available).toBe(0);

    // One executed drain per pod; everyone else shares its pod's drain.
    const statuses = tally(runs.map((r) => r.outcome.status));
    expect(statuses).toEqual({ EXECUTED: DRAIN_REPLICAS, COALESCED: 24 - DRAIN_REPLICAS });
    for (let i = 0; i < DRAIN_REPLICAS; i++) {
      const forPod = runs.filter((r) => r.input.resourceArn === drainPod(i));
      const primary = forPod.filter((r) => r.outcome.status === 'EXECUTED');
      expect(primary).toHaveLength(1);
      for (const follower of forPod.filter((r) => r.outcome.status === 'COALESCED')) {
        expect(follower.outcome.primaryRequestId).toBe(primary[0]!.requestId);
      }
      expect(env.sim.fleet.observe(drainPod(i)).state.drains).toBe(1);
    }

    // Drains had to wait for capacity: DEFERRED (progress, on the topic and in the SDK) and then EXECUTED.
    // An outcome's progress precedes its final record on the scope's partition: once the tap has every final, it has every progress.
    await tap.waitForFinals(runs.map((r) => r.requestId));
    const deferred = runs.filter((r) => tap.progress(r.requestId).some((p) => p.status === 'DEFERRED'));
    expect(deferred.length).toBeGreaterThanOrEqual(1);
    for (const run of deferred) {
      expect(run.outcome.status).toBe('EXECUTED');
      expect(run.progress.map((p) => p.status)).toContain('DEFERRED');
      expect(tap.progress(run.requestId).find((p) => p.status === 'DEFERRED')!.detail).toMatch(/below the minimum of 3/);
    }
    const { rows: budgetDeferrals } = await env.db.query(
      "SELECT count(DISTINCT request_id)::int AS n FROM arbiter.decisions WHERE status = 'DEFERRED' AND resource_arn LIKE $1 || '/%'",
      [DRAIN_DEPLOYMENT],
    );
    expect(budgetDeferrals).toEqual([{ n: deferred.length }]);
    console.log(`drain race: ${deferred.length} of ${DRAIN_REPLICAS} drains deferred for budget, lowest available ${lowest} (${samples} samples)`);

    await expectExactlyOneFinalEach(runs);
  });
});
