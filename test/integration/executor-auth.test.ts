import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ArbiterLocks } from '../../src/agent-sdk/index.ts';
import { signedFetch, signRequest } from '../../src/executor/index.ts';
import { deploymentArn, podArn } from '../../tools/fleet/index.ts';
import { startTestEnv, type TestEnv } from '../support/harness.ts';

const API = deploymentArn('payments', 'api');

/**
 * Executor calls the executor can trust (issue 11): the harness starts the fleet with a key and a
 * token check against this installation's lock store, and gives the workers the key.
 */
describe('executor calls: signed by Arbiter, with fencing tokens only Arbiter issued', () => {
  let env: TestEnv;

  beforeAll(async () => {
    env = await startTestEnv({ workers: 1, latencyScale: 0.2 });
  }, 120_000);

  afterAll(async () => {
    await env?.stop();
  });

  const action = (arn: string, extra: Record<string, unknown> = {}) =>
    JSON.stringify({ requestId: randomUUID(), agentId: 'direct-agent', arn, action: 'restart', params: {}, ...extra });

  it('an unsigned, wrongly signed or stale call to the fleet is 401 with a JSON error, and changes nothing', async () => {
    const pod = podArn(API, 'api', 0);
    const before = env.sim.fleet.stats().total;
    const post = (body: string, headers: Record<string, string> = {}) =>
      fetch(`${env.sim.url}/actions`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });

    const unsigned = await post(action(pod));
    expect(unsigned.status).toBe(401);
    expect(await unsigned.json()).toMatchObject({ ok: false, code: 'UNAUTHORIZED', detail: expect.stringMatching(/missing x-arbiter-timestamp/) });

    const wrongKey = await signedFetch('not-the-fleet-key-0123456789', `${env.sim.url}/actions`, { method: 'POST', body: action(pod) });
    expect(wrongKey.status).toBe(401);
    expect(await wrongKey.json()).toMatchObject({ code: 'UNAUTHORIZED', detail: expect.stringMatching(/signature does not match/) });

    const body = action(pod);
    const tampered = await post(body.replace('restart', 'drain'), signRequest({ key: env.executorHmacKey, method: 'POST', pathWithQuery: '/actions', body }));
    expect(tampered.status).toBe(401);

    const stale = await post(body, signRequest({ key: env.executorHmacKey, method: 'POST', pathWithQuery: '/actions', body, now: Date.now() - 10 * 60_000 }));
    expect(stale.status).toBe(401);
    expect(await stale.json()).toMatchObject({ detail: expect.stringMatching(/old, outside ±300 s/) });

    const outOfBand = await fetch(`${env.sim.url}/out-of-band`, { method: 'POST', body: JSON.stringify({ arn: pod, action: 'restart' }) });
    expect(outOfBand.status).toBe(401);

    expect(env.sim.fleet.stats().total).toBe(before);
    expect(env.sim.fleet.observe(pod).state.restarts).toBe(0);
  });

  it('a fencing token no lease issued is refused: 409 FENCED, recorded, no effect; a token a lease issued is accepted', async () => {
    const pod = podArn(API, 'api', 1);
    // No lease ever taken on the pod: any token is made up.
    const madeUp = action(pod, { fencingToken: 7 });
    const refused = await signedFetch(env.executorHmacKey, `${env.sim.url}/actions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: madeUp });
    expect(refused.status).toBe(409);
    expect(await refused.json()).toMatchObject({ ok: false, code: 'FENCED', highestToken: 0, detail: expect.stringMatching(/never issued/) });

    // With a lease: its token goes through, one above it does not.
    const locks = new ArbiterLocks(env.databaseUrl, 'direct-agent');
    try {
      const lease = await locks.acquire(pod, 30_000);
      if (!lease.acquired) throw new Error('expected to acquire a free lock');
      const ahead = action(pod, { fencingToken: lease.fencingToken + 1 });
      const tooHigh = await signedFetch(env.executorHmacKey, `${env.sim.url}/actions`, { method: 'POST', body: ahead });
      expect(tooHigh.status).toBe(409);
      expect(await tooHigh.json()).toMatchObject({ code: 'FENCED', highestToken: lease.fencingToken });
      const issued = action(pod, { fencingToken: lease.fencingToken });
      const accepted = await signedFetch(env.executorHmacKey, `${env.sim.url}/actions`, { method: 'POST', body: issued });
      expect(accepted.status).toBe(200);
      await locks.release(pod, lease.fencingToken);

      const ids = [madeUp, ahead].map((b) => (JSON.parse(b) as { requestId: string }).requestId);
      expect(env.sim.fleet.fenced().filter((f) => f.arn === pod)).toEqual([
        expect.objectContaining({ requestId: ids[0], fencingToken: 7, highestToken: 0, reason: 'not_issued' }),
        expect.objectContaining({ requestId: ids[1], fencingToken: lease.fencingToken + 1, highestToken: lease.fencingToken, reason: 'not_issued' }),
      ]);
      const observed = env.sim.fleet.observe(pod);
      expect(observed.appliedRequestIds).toEqual([(JSON.parse(issued) as { requestId: string }).requestId]);
      expect((await fetch(`${env.sim.url}/fenced`).then((r) => r.json())) as { total: number }).toMatchObject({ total: 2 });
    } finally {
      await locks.close();
    }
  });

  it('a worker with the key executes end to end, and never logs the key', async () => {
    const pod = podArn(API, 'api', 2);
    const client = await env.client('signed-requester');
    const outcome = await client.submitAndWait({ agentId: 'signed-requester', resourceArn: pod, action: 'restart' }, { timeoutMs: 60_000 });
    expect(outcome.status).toBe('EXECUTED');
    expect(env.sim.fleet.observe(pod).appliedRequestIds).toContain(outcome.requestId);
    expect(env.sim.fleet.fenced().filter((f) => f.arn === pod)).toEqual([]);
    expect(env.workers[0]!.output()).not.toContain(env.executorHmacKey);
  });
});
