import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ArbiterLocks, type ArbiterClient } from '../../src/agent-sdk/index.ts';
import { deploymentArn, podArn } from '../../tools/fleet/index.ts';
import { runArbiterCli } from '../support/cli.ts';
import { eventually, startTestEnv, type TestEnv } from '../support/harness.ts';
import { PlanEventTap } from '../support/plan-events.ts';

const WEB = deploymentArn('shop', 'web');
const FLEET = {
  deployments: [{ namespace: 'shop', name: 'web', replicas: 3, minAvailable: 1, revision: 'v1' }],
  // n3 stays: pods evicted from n1 and n2 need somewhere to go.
  nodes: [{ name: 'n1' }, { name: 'n2' }, { name: 'n3' }],
};

describe('plans: ordered steps, released only after their predecessors executed', () => {
  let env: TestEnv;
  let tap: PlanEventTap;
  let client: ArbiterClient;

  beforeAll(async () => {
    env = await startTestEnv({ workers: 1, fleet: FLEET, latencyScale: 0.2, config: { deferral: { recheckMs: 100 }, plans: { pollMs: 100 }, preconditions: { terminateUndrained: 'expand' } } });
    client = await env.client('planner');
    tap = await new PlanEventTap(env.prefix).start();
  }, 120_000);

  afterAll(async () => {
    await tap?.stop();
    await env?.stop();
  });

  it('a plan whose second step is rejected: the third is CANCELLED, the plan FAILED, its events on the topic in order', async () => {
    const plan = await client
      .plan(
        [
          { action: 'restart', resourceArn: podArn(WEB, 'web', 0) },
          // A fresh deployment has no previous revision: REJECTED_PRECONDITION.
          { action: 'rollback', resourceArn: WEB },
          { action: 'restart', resourceArn: podArn(WEB, 'web', 1) },
        ],
        { agentId: 'planner', reason: 'test' },
      )
      .submit();
    const result = await plan.wait({ timeoutMs: 60_000 });
    expect(result.status).toBe('FAILED');
    const events = await tap.waitForEnd(plan.planId);
    expect(events.map((e) => [e.seq, e.type, e.step, e.stepStatus])).toEqual([
      [1, 'SUBMITTED', null, null],
      [2, 'STEP_RELEASED', 0, 'RELEASED'],
      [3, 'STEP_FINISHED', 0, 'EXECUTED'],
      [4, 'STEP_RELEASED', 1, 'RELEASED'],
      [5, 'STEP_FINISHED', 1, 'REJECTED_PRECONDITION'],
      [6, 'STEP_CANCELLED', 2, 'CANCELLED'],
      [7, 'FAILED', null, null],
    ]);
    expect(events.at(-1)!.detail).toMatch(/step 1 \(rollback .*\) ended REJECTED_PRECONDITION/);
    // The cancelled step never reached Kafka, let alone the fleet.
    const executed = (env.sim.fleet.executions()).map((e) => e.requestId);
    expect(executed).toContain(plan.requestIds[0]);
    expect(executed).not.toContain(plan.requestIds[2]);
    const steps = await env.db.query('SELECT step, status FROM arbiter.plan_steps WHERE plan_id = $1 ORDER BY step', [plan.planId]);
    expect(steps.rows).toEqual([
      { step: 0, status: 'EXECUTED' },
      { step: 1, status: 'REJECTED_PRECONDITION' },
      { step: 2, status: 'CANCELLED' },
    ]);
  });

  it('the CLI submits a plan across scopes and waits; plan status shows the timeline, plan list the plan', async () => {
    const node = 'arn:sim:k8s:local:000000000000:cluster/prod/node/n2';
    const cliEnv = { ...env.cliEnv };
    const submitted = await runArbiterCli(['plan', 'submit', '--agent', 'ops-cli', '--step', `scale:${WEB}:replicas=4`, '--step', `drain:${node}`, '--step', `terminate:${node}`, '--wait', '--json'], cliEnv);
    expect(submitted.code, submitted.stderr).toBe(0);
    const result = JSON.parse(submitted.stdout) as { planId: string; status: string; requestIds: string[] };
    expect(result.status).toBe('SUCCEEDED');
    const log = env.sim.fleet.executions();
    const at = (id: string) => log.find((e) => e.requestId === id)!;
    // Each step started only after the one before it had finished.
    expect(at(result.requestIds[1]!).startedAt).toBeGreaterThanOrEqual(at(result.requestIds[0]!).finishedAt!);
    expect(at(result.requestIds[2]!).startedAt).toBeGreaterThanOrEqual(at(result.requestIds[1]!).finishedAt!);

    const status = await runArbiterCli(['plan', 'status', result.planId, '--json'], cliEnv);
    expect(status.code, status.stderr).toBe(0);
    const shown = JSON.parse(status.stdout) as { status: string; steps: Array<{ status: string }>; events: Array<{ type: string }> };
    expect(shown.status).toBe('SUCCEEDED');
    expect(shown.steps.map((s) => s.status)).toEqual(['EXECUTED', 'EXECUTED', 'EXECUTED']);
    expect(shown.events.at(-1)!.type).toBe('SUCCEEDED');
    const table = await runArbiterCli(['plan', 'status', result.planId], cliEnv);
    expect(table.stdout).toContain('STEP_RELEASED');
    const list = await runArbiterCli(['plan', 'list', '--agent', 'ops-cli', '--json'], cliEnv);
    // The drain of n2 went through its own plan (cordon, then one eviction per pod on n2), made on the agent's behalf.
    const plans = JSON.parse(list.stdout) as Array<{ planId: string; status: string; steps: number; executed: number; parentRequestId: string | null }>;
    expect(plans).toContainEqual(expect.objectContaining({ planId: result.planId, status: 'SUCCEEDED', steps: 3, executed: 3, parentRequestId: null }));
    // (A pod that lands on the node while the first plan runs gets a second plan for what is left.)
    const expansions = plans.filter((p) => p.parentRequestId === result.requestIds[1]);
    expect(expansions.length).toBeGreaterThanOrEqual(1);
    for (const e of expansions) expect(e).toMatchObject({ status: 'SUCCEEDED', executed: e.steps });
    expect(plans).toHaveLength(1 + expansions.length);
  });

  it('preconditions.terminateUndrained: expand — a terminate of an undrained node is expanded into its drain, then runs', async () => {
    const node = 'arn:sim:k8s:local:000000000000:cluster/prod/node/n1';
    expect((env.sim.fleet.observe(node).state.pods as string[]).length).toBeGreaterThan(0);
    const outcome = await client.submitAndWait({ agentId: 'careless-bot', resourceArn: node, action: 'terminate' }, { timeoutMs: 60_000 });
    expect(outcome.status).toBe('EXECUTED');
    // The relay records the plan SUCCEEDED on its next pass after the drain's outcome; the terminate
    // may run (its node drained) before that pass.
    const rows = await eventually(
      async () => {
        const { rows } = await env.db.query(
          `SELECT p.status, s.action, s.request_id FROM arbiter.plans p JOIN arbiter.plan_steps s USING (plan_id) WHERE p.parent_request_id = $1`,
          [outcome.requestId],
        );
        return rows.length === 1 && rows[0].status !== 'RUNNING' ? rows : undefined;
      },
      10_000,
      'the expansion plan to end',
    );
    expect(rows).toEqual([{ status: 'SUCCEEDED', action: 'drain', request_id: expect.any(String) }]);
    const log = env.sim.fleet.executions();
    const drain = log.find((e) => e.requestId === rows[0].request_id)!;
    const terminate = log.find((e) => e.requestId === outcome.requestId)!;
    expect(terminate.startedAt).toBeGreaterThanOrEqual(drain.finishedAt!);
    expect(env.sim.fleet.violations().violations).toEqual([]);
  });

  it('cancelled by its agent: steps not yet released end CANCELLED; another agent cannot cancel it', async () => {
    const pod = podArn(WEB, 'web', 2);
    // Another agent holds the pod's lock: the first step waits (DEFERRED), so the cancellation
    // reaches the plan while its second step is certainly not released yet.
    const holder = new ArbiterLocks(env.databaseUrl, 'lock-holder');
    const held = await holder.acquire(pod, 60_000);
    if (!held.acquired) throw new Error('could not take the lock for the test');
    const plan = await client
      .plan(
        [
          { action: 'restart', resourceArn: pod },
          { action: 'restart', resourceArn: podArn(WEB, 'web', 0) },
        ],
        { agentId: 'planner' },
      )
      .submit();
    await client.cancelPlan(plan.planId, 'someone-else', 'not mine');
    await plan.cancel('changed my mind');
    const result = await plan.wait({ timeoutMs: 30_000 });
    expect(result.status).toBe('CANCELLED');
    expect(result.events.at(-1)).toMatchObject({ type: 'CANCELLED', detail: 'cancelled by planner: changed my mind' });
    const steps = await env.db.query('SELECT step, status FROM arbiter.plan_steps WHERE plan_id = $1 ORDER BY step', [plan.planId]);
    expect(steps.rows[1]).toEqual({ step: 1, status: 'CANCELLED' });
    // The released first step still runs to its own end once the lock is free, and is recorded.
    await holder.release(pod, held.fencingToken);
    await holder.close();
    expect((await client.awaitOutcome(plan.requestIds[0]!, { timeoutMs: 30_000 })).status).toBe('EXECUTED');
    await eventually(async () => {
      const { rows } = await env.db.query('SELECT status FROM arbiter.plan_steps WHERE plan_id = $1 AND step = 0', [plan.planId]);
      return rows[0]?.status === 'EXECUTED';
    }, 30_000, 'the released step of the cancelled plan recorded EXECUTED');
    // ...without overwriting why the plan ended.
    const ended = await env.db.query('SELECT status, detail FROM arbiter.plans WHERE plan_id = $1', [plan.planId]);
    expect(ended.rows[0]).toEqual({ status: 'CANCELLED', detail: 'cancelled by planner: changed my mind' });
    // Every plan event is counted, the first ones (recorded when a command is taken) included.
    const metrics = await (await fetch(`${env.workers[0]!.metricsUrl}/metrics`)).text();
    for (const type of ['SUBMITTED', 'STEP_RELEASED', 'CANCELLED', 'STEP_FINISHED']) {
      expect(metrics, type).toMatch(new RegExp(`arbiter_plan_events_total\\{type="${type}"\\} [1-9]`));
    }
  });

  it('a malformed plan is REJECTED with every reason; an undecodable command is dead-lettered and audited; neither stalls', async () => {
    const bad = await client
      .plan([{ action: 'reboot', resourceArn: WEB }, { action: 'restart', resourceArn: 'nope', after: [5] }], { agentId: 'planner' })
      .submit();
    const rejected = await bad.wait({ timeoutMs: 30_000 });
    expect(rejected.status).toBe('REJECTED');
    expect(rejected.events[0]!.detail).toMatch(/unknown action 'reboot'.*step 1: .*step 1: 'after' must name earlier steps/);

    const { Kafka, logLevel } = await import('kafkajs');
    const producer = new Kafka({ brokers: [env.config.kafka.brokers[0]!], logLevel: logLevel.NOTHING }).producer();
    await producer.connect();
    await producer.send({ topic: `${env.prefix}.plan-commands`, messages: [{ key: 'junk', value: Buffer.from('not avro at all') }] });
    await producer.disconnect();
    await eventually(async () => {
      const { rows } = await env.db.query(`SELECT error_code FROM arbiter.dead_letters WHERE topic = $1`, [`${env.prefix}.plan-commands`]);
      return rows.length === 1 && rows[0].error_code === 'DECODE_FAILED';
    }, 30_000, 'the undecodable plan command in arbiter.dead_letters');
    // Listed, and replayable, like the requests topic's dead letters.
    const listed = await runArbiterCli(['dead-letters', 'list', '--source', 'plan-commands', '--json'], env.cliEnv);
    expect(listed.code, listed.stderr).toBe(0);
    expect(JSON.parse(listed.stdout)).toEqual([expect.objectContaining({ topic: `${env.prefix}.plan-commands`, errorCode: 'DECODE_FAILED', key: 'junk' })]);
    // The next plan on the same topic still runs.
    const next = await client.plan([{ action: 'restart', resourceArn: podArn(WEB, 'web', 1) }], { agentId: 'planner', planId: randomUUID() }).submit();
    expect((await next.wait({ timeoutMs: 30_000 })).status).toBe('SUCCEEDED');
  });
});
