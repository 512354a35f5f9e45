import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ArbiterLocks, type RemediationOutcome } from '../../src/agent-sdk/index.ts';
import { ArbiterError } from '../../src/contract/errors.ts';
import { HttpExecutor, signedFetch } from '../../src/executor/index.ts';
import { deploymentArn, podArn } from '../../tools/fleet/index.ts';
import { eventually, startTestEnv, type TestEnv } from '../support/harness.ts';

const API = deploymentArn('payments', 'api');
const WORKER_DEPLOYMENT = deploymentArn('payments', 'worker');
const REAPER_INTERVAL_MS = 200;

/** Lock-only ARNs (never executed): one per test, so their lock histories stay apart. */
const lockArn = (name: string) => `arn:sim:k8s:local:000000000000:cluster/prod/ns/locks/deployment/${name}`;

describe('fenced locks for agents that act directly, and workers honouring them', () => {
  let env: TestEnv;
  const handles: ArbiterLocks[] = [];
  const locks = (agentId: string) => {
    const handle = new ArbiterLocks(env.databaseUrl, agentId);
    handles.push(handle);
    return handle;
  };
  const events = async (arn: string) =>
    (
      await env.db.query(
        'SELECT event, owner, agent_id, fencing_token::int AS token, holder_owner, holder_agent, ttl_ms, detail, at FROM arbiter.lock_events WHERE resource_arn = $1 ORDER BY at, fencing_token',
        [arn],
      )
    ).rows;

  beforeAll(async () => {
    env = await startTestEnv({
      workers: 1,
      latencyScale: 0.2,
      config: {
        locks: { reaperIntervalMs: REAPER_INTERVAL_MS, retryMs: 200 },
        deferral: { maxDeferMs: 60_000, recheckMs: 100 },
      },
    });
  });
  afterAll(async () => {
    await Promise.all(handles.map((h) => h.close()));
    await env?.stop();
  });

  it('a lock taken with a 1 s TTL and never released is reaped and recorded as expired (arbiter.ttl_expirations)', async () => {
    const arn = lockArn('forgotten');
    const agent = locks('forgetful-agent');
    const lease = await agent.acquire(arn, 1_000);
    if (!lease.acquired) throw new Error('expected to acquire a free lock');

    // The worker's reaper (every 200 ms) finds it once it expires.
    const expiry = await eventually(async () => {
      const { rows } = await env.db.query('SELECT owner, agent_id, fencing_token::int AS token, ttl_ms, detail, at FROM arbiter.ttl_expirations WHERE resource_arn = $1', [arn]);
      return rows[0];
    }, 10_000, 'a ttl_expirations row');
    expect(expiry).toMatchObject({ owner: 'agent:forgetful-agent', agent_id: 'forgetful-agent', token: lease.fencingToken, ttl_ms: 1_000 });
    expect(expiry.detail).toMatch(/expired unreleased/);
    const lateMs = (expiry.at as Date).getTime() - lease.expiresAt.getTime();
    expect(lateMs).toBeGreaterThanOrEqual(0);
    expect(lateMs).toBeLessThan(REAPER_INTERVAL_MS + 1_500);

    // The lock is free again, the forgetful holder can neither renew nor release it, and the expiry is recorded once.
    expect((await agent.list({ resourceArn: arn }))[0]).toMatchObject({ owner: null, agentId: null, fencingToken: lease.fencingToken });
    expect(await agent.renew(arn, lease.fencingToken, 1_000)).toBe(false);
    expect(await agent.release(arn, lease.fencingToken)).toBe(false);
    await sleep(REAPER_INTERVAL_MS * 3);
    expect((await events(arn)).map((e) => e.event)).toEqual(['acquired', 'expired', 'lost']);
  });

  it("a second agent's acquire while the lock is held fails, names the holder, and shows in arbiter.lock_contention", async () => {
    const arn = lockArn('contended');
    const holder = locks('agent-holder');
    const waiter = locks('agent-waiter');
    const held = await holder.acquire(arn, 30_000);
    if (!held.acquired) throw new Error('expected to acquire a free lock');

    for (let i = 0; i < 2; i++) {
      const attempt = await waiter.acquire(arn, 30_000);
      expect(attempt).toEqual({
        acquired: false,
        holder: { owner: 'agent:agent-holder', agentId: 'agent-holder', fencingToken: held.fencingToken, expiresAt: held.expiresAt },
      });
    }
    const failed = (await events(arn)).filter((e) => e.event === 'acquire_failed');
    expect(failed).toHaveLength(2);
    for (const e of failed) {
      expect(e).toMatchObject({ owner: 'agent:agent-waiter', agent_id: 'agent-waiter', holder_owner: 'agent:agent-holder', holder_agent: 'agent-holder', token: held.fencingToken });
    }
    const { rows: contention } = await env.db.query('SELECT waiting, holding, failed_acquires::int AS n FROM arbiter.lock_contention WHERE resource_arn = $1', [arn]);
    expect(contention).toEqual([{ waiting: 'agent-waiter', holding: 'agent-holder', n: 2 }]);

    // Once released, the waiter gets it, with a higher fencing token.
    expect(await holder.release(arn, held.fencingToken)).toBe(true);
    const next = await waiter.acquire(arn, 30_000);
    expect(next.acquired && next.fencingToken).toBeGreaterThan(held.fencingToken);
  });

  it('fencing tokens increase monotonically across holders, releases and expiries', async () => {
    const arn = lockArn('monotonic');
    const agents = [locks('mono-a'), locks('mono-b'), locks('mono-c')];
    const tokens: number[] = [];
    for (let round = 0; round < 9; round++) {
      const agent = agents[round % agents.length]!;
      const got = await agent.acquire(arn, 1_000);
      if (!got.acquired) throw new Error(`round ${round}: expected the lock to be free, held by ${got.holder.owner}`);
      tokens.push(got.fencingToken);
      if (round === 4) {
        // This holder never releases: the next one must wait for the expiry, and still gets a higher token.
        await eventually(async () => (await events(arn)).some((e) => e.event === 'expired'), 10_000, 'the expiry');
      } else {
        expect(await agent.release(arn, got.fencingToken)).toBe(true);
      }
    }
    for (let i = 1; i < tokens.length; i++) expect(tokens[i]).toBeGreaterThan(tokens[i - 1]!);
    const acquired = (await events(arn)).filter((e) => e.event === 'acquired').map((e) => e.token);
    expect(acquired).toEqual(tokens);
  });

  it('withLock renews the lease while the work runs past the TTL: renewed events, no expiry, others kept out', async () => {
    const arn = lockArn('renewed');
    const agent = locks('patient-agent');
    const other = locks('impatient-agent');
    let token = 0;
    const kept: boolean[] = [];
    const result = await agent.withLock(
      arn,
      async (lease) => {
        token = lease.fencingToken;
        // Three TTLs long; the reaper runs every 200 ms meanwhile.
        for (let i = 0; i < 6; i++) {
          await sleep(500);
          const attempt = await other.acquire(arn, 1_000);
          kept.push(!attempt.acquired && attempt.holder.fencingToken === token);
        }
        expect(lease.signal.aborted).toBe(false);
        return 'done';
      },
      { ttlMs: 1_000 },
    );
    expect(result).toBe('done');
    expect(kept).toEqual([true, true, true, true, true, true]);
    const history = await events(arn);
    const renewed = history.filter((e) => e.event === 'renewed');
    expect(renewed.length).toBeGreaterThanOrEqual(6);
    for (const e of renewed) expect(e).toMatchObject({ owner: 'agent:patient-agent', token, ttl_ms: 1_000 });
    expect(history.filter((e) => ['expired', 'lost'].includes(e.event))).toEqual([]);
    expect(history.filter((e) => e.event === 'released')).toMatchObject([{ owner: 'agent:patient-agent', token }]);
  });

  it('a write with a stale fencing token is refused by the fleet (409 FENCED → ArbiterError FENCED) and recorded', async () => {
    const pod = podArn(API, 'api', 2);
    const executor = new HttpExecutor({ baseUrl: env.sim.url, timeoutMs: 10_000, hmacKey: env.executorHmacKey });
    const slow = locks('agent-slow');
    const fast = locks('agent-fast');
    const first = await slow.acquire(pod, 1_000);
    if (!first.acquired) throw new Error('expected to acquire a free lock');
    // agent-slow stalls past its TTL; the lock expires and agent-fast takes it over.
    await eventually(async () => (await events(pod)).some((e) => e.event === 'expired'), 10_000, 'the expiry of agent-slow');
    const second = await fast.acquire(pod, 30_000);
    if (!second.acquired) throw new Error('expected the expired lock to be free');
    expect(second.fencingToken).toBeGreaterThan(first.fencingToken);
    const fastWrite = { requestId: randomUUID(), agentId: 'agent-fast', arn: pod, action: 'restart', params: {}, fencingToken: second.fencingToken };
    expect((await executor.execute(fastWrite)).ok).toBe(true);

    // agent-slow wakes up and writes with the token it still has.
    const slowWrite = { requestId: randomUUID(), agentId: 'agent-slow', arn: pod, action: 'restart', params: {}, fencingToken: first.fencingToken };
    const refused = await executor.execute(slowWrite).then(
      () => null,
      (error: unknown) => error,
    );
    expect(refused).toBeInstanceOf(ArbiterError);
    expect((refused as ArbiterError).code).toBe('FENCED');
    expect((refused as ArbiterError).message).toMatch(new RegExp(`fencing token ${first.fencingToken} refused, highest seen ${second.fencingToken}`));

    // Recorded by the fleet; the stale write had no effect.
    expect(env.sim.fleet.fenced()).toEqual([
      expect.objectContaining({ arn: pod, requestId: slowWrite.requestId, agentId: 'agent-slow', fencingToken: first.fencingToken, highestToken: second.fencingToken }),
    ]);
    const observed = env.sim.fleet.observe(pod);
    expect(observed.appliedRequestIds).toContain(fastWrite.requestId);
    expect(observed.appliedRequestIds).not.toContain(slowWrite.requestId);
    expect(observed.state.restarts).toBe(1);
    expect(await fast.release(pod, second.fencingToken)).toBe(true);
  });

  it('a made-up fencing token far above anything a lease issued is refused by the fleet (409 FENCED, recorded), so it cannot lock Arbiter out', async () => {
    const pod = podArn(WORKER_DEPLOYMENT, 'worker', 1);
    // Signed (the rogue has the executor's key), but the token came from no lease.
    const rogueId = randomUUID();
    const rogue = await signedFetch(env.executorHmacKey, `${env.sim.url}/actions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ requestId: rogueId, agentId: 'rogue-agent', arn: pod, action: 'restart', fencingToken: 1_000_000 }),
    });
    expect(rogue.status).toBe(409);
    expect(await rogue.json()).toMatchObject({ ok: false, code: 'FENCED', highestToken: 0 });
    expect(env.sim.fleet.fenced()).toContainEqual(
      expect.objectContaining({ arn: pod, requestId: rogueId, agentId: 'rogue-agent', fencingToken: 1_000_000, highestToken: 0, reason: 'not_issued' }),
    );
    expect(env.sim.fleet.observe(pod).appliedRequestIds).not.toContain(rogueId);

    // Arbiter's own lease for the pod is honoured: the fleet never learnt the made-up token.
    const client = await env.client('after-the-rogue');
    const outcome = await client.submitAndWait({ agentId: 'after-the-rogue', resourceArn: pod, action: 'restart' }, { timeoutMs: 30_000 });
    expect(outcome.status).toBe('EXECUTED');
    expect(env.sim.fleet.observe(pod).appliedRequestIds).toContain(outcome.requestId);
  });

  it("a worker whose write is fenced off records it (lock_events 'fenced' with its token, execution abandoned) and never applies it", async () => {
    const pod = podArn(WORKER_DEPLOYMENT, 'worker', 0);
    // The fleet remembers a token above any the worker will hold, as it would after a later lease
    // had written (the worker's own lease lost). The HTTP API refuses tokens no lease issued, so
    // the memory is planted in the fleet directly.
    const planted = await env.sim.fleet.execute({ requestId: randomUUID(), agentId: 'later-lease-holder', arn: pod, action: 'restart', params: {}, fencingToken: 1_000_000 });
    expect(planted.ok).toBe(true);

    const client = await env.client('fenced-requester');
    const outcome = await client.submitAndWait(
      { agentId: 'fenced-requester', resourceArn: pod, action: 'restart', deadline: Date.now() + 4_000 },
      { timeoutMs: 30_000 },
    );
    expect(outcome.status).toBe('EXPIRED');
    expect(outcome.detail).toMatch(/fenced off/);

    const refused = env.sim.fleet.fenced().filter((f) => f.requestId === outcome.requestId);
    expect(refused.length).toBeGreaterThanOrEqual(1);
    expect(env.sim.fleet.observe(pod).appliedRequestIds).not.toContain(outcome.requestId);

    const history = await events(pod);
    const workerOwner = `worker:${env.workers[0]!.id}`;
    const fenced = history.filter((e) => e.event === 'fenced');
    const acquired = history.filter((e) => e.event === 'acquired' && e.owner === workerOwner).map((e) => e.token);
    expect(fenced.length).toBe(refused.length);
    for (const e of fenced) {
      expect(e).toMatchObject({ owner: workerOwner, agent_id: 'fenced-requester' });
      // The token the worker was refused with, not a placeholder.
      expect(acquired).toContain(e.token);
    }
    expect(refused.map((f) => f.fencingToken).sort()).toEqual(fenced.map((e) => e.token).sort());
    const { rows: phases } = await env.db.query('SELECT DISTINCT phase FROM arbiter.executions WHERE request_id = $1 ORDER BY 1', [outcome.requestId]);
    expect(phases.map((p) => p.phase)).toEqual(['abandoned', 'started']);
    // Each attempt released its lease.
    expect(await locks('observer').list({ heldOnly: true, resourceArn: pod })).toEqual([]);
  });

  it("workers honour an agent's lock: the request is DEFERRED while the agent holds it and EXECUTED only after release", async () => {
    const pod = podArn(API, 'api', 1);
    const handsOn = locks('agent-hands-on');
    const held = await handsOn.acquire(pod, 60_000);
    if (!held.acquired) throw new Error('expected to acquire a free lock');

    const client = await env.client('lock-respecting-requester');
    const requestId = randomUUID();
    const progress: RemediationOutcome[] = [];
    const final = client.awaitOutcome(requestId, { timeoutMs: 60_000, onProgress: (o) => progress.push(o) });
    await client.submit({ requestId, agentId: 'queued-agent', resourceArn: pod, action: 'restart' });

    await eventually(async () => progress.find((p) => p.status === 'DEFERRED'), 20_000, 'a DEFERRED progress outcome');
    expect(progress[0]!.detail).toMatch(/locked by agent-hands-on/);
    // The worker keeps trying for a while, and never touches the pod.
    await sleep(1_500);
    let observed = env.sim.fleet.observe(pod);
    expect(observed.appliedRequestIds).not.toContain(requestId);
    expect(observed.inProgressRequestIds).not.toContain(requestId);
    const { rows: contention } = await env.db.query('SELECT waiting, holding, failed_acquires::int AS n FROM arbiter.lock_contention WHERE resource_arn = $1', [pod]);
    expect(contention).toHaveLength(1);
    expect(contention[0]).toMatchObject({ waiting: 'queued-agent', holding: 'agent-hands-on' });
    expect(contention[0].n).toBeGreaterThanOrEqual(2);

    const releasedAt = Date.now();
    expect(await handsOn.release(pod, held.fencingToken)).toBe(true);
    const outcome = await final;
    expect(outcome.status).toBe('EXECUTED');
    expect(outcome.fencingToken).toBeGreaterThan(held.fencingToken);
    expect(outcome.completedAt!).toBeGreaterThanOrEqual(releasedAt);
    observed = env.sim.fleet.observe(pod);
    expect(observed.appliedRequestIds).toContain(requestId);

    const { rows: decisions } = await env.db.query('SELECT status, final FROM arbiter.decisions WHERE request_id = $1 ORDER BY decided_at', [requestId]);
    expect(decisions).toEqual([
      { status: 'ACCEPTED', final: false },
      { status: 'DEFERRED', final: false },
      { status: 'EXECUTED', final: true },
    ]);
  });
});
