import { Kafka, logLevel } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ArbiterClient, buildRequest } from '../../src/agent-sdk/index.ts';
import { Serde } from '../../src/contract/serde.ts';
import { generateSigningKeys, parsePrivateKey, SIGNATURE_HEADER, signValue } from '../../src/contract/signing.ts';
import { topicNames } from '../../src/contract/topics.ts';
import { deploymentArn, podArn } from '../../tools/fleet/index.ts';
import { endpoints, startTestEnv, type TestEnv } from '../support/harness.ts';

const API = deploymentArn('payments', 'api');
const POD = podArn(API, 'api', 0);
const P = generateSigningKeys();
const Q = generateSigningKeys();
/** Arbiter's own key: it signs outcomes (and plan steps). */
const ARBITER = generateSigningKeys();

describe('agent identity: signed requests, verified before anything else', () => {
  let env: TestEnv;
  const clients: ArbiterClient[] = [];
  const client = async (signingKey?: string, outcomeKeys?: string[]) => {
    const c = new ArbiterClient({
      brokers: [endpoints.kafkaBrokers],
      schemaRegistryUrl: endpoints.schemaRegistryUrl,
      topicPrefix: env.prefix,
      ...(signingKey ? { signingKey } : {}),
      ...(outcomeKeys ? { outcomeKeys } : {}),
    });
    clients.push(c);
    return c.connect();
  };
  const decision = async (requestId: string) =>
    (await env.db.query(`SELECT status, rule, detail FROM arbiter.decisions WHERE request_id = $1 AND final`, [requestId])).rows[0];

  beforeAll(async () => {
    env = await startTestEnv({
      workers: 1,
      config: {
        signatures: { required: true, unsignedAgents: ['legacy-*'], agentKeys: { 'agent-p': P.publicKey, 'agent-q': Q.publicKey }, maxAgeMs: 600_000, arbiterPrivateKey: ARBITER.privateKeyPem },
        locks: { retryMs: 200 },
      },
    });
  }, 120_000);

  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await env?.stop();
  });

  it('a request signed by its own agent is decided as usual', async () => {
    const p = await client(P.privateKeyPem);
    const outcome = await p.submitAndWait({ agentId: 'agent-p', resourceArn: POD, action: 'restart' });
    expect(outcome.status).toBe('EXECUTED');
  });

  it('agent P signing as itself but claiming to be Q: REJECTED_UNAUTHORIZED, audited with the reason', async () => {
    const p = await client(P.privateKeyPem);
    const outcome = await p.submitAndWait({ agentId: 'agent-q', resourceArn: POD, action: 'restart' });
    expect(outcome.status).toBe('REJECTED_UNAUTHORIZED');
    expect(await decision(outcome.requestId)).toEqual({ status: 'REJECTED_UNAUTHORIZED', rule: 'authenticate', detail: "the signature does not verify with agent agent-q's key" });
  });

  it('unsigned where the policy requires signatures: REJECTED_UNAUTHORIZED; an agent allowed to be unsigned still works', async () => {
    const unsigned = await client();
    const refused = await unsigned.submitAndWait({ agentId: 'agent-r', resourceArn: POD, action: 'restart' });
    expect(refused.status).toBe('REJECTED_UNAUTHORIZED');
    expect((await decision(refused.requestId)).detail).toBe('unsigned request: the policy requires agent agent-r to sign');
    // An agent with a registered key cannot send unsigned, allowed pattern or not.
    const claimed = await unsigned.submitAndWait({ agentId: 'agent-p', resourceArn: POD, action: 'restart' });
    expect(claimed.status).toBe('REJECTED_UNAUTHORIZED');
    const legacy = await unsigned.submitAndWait({ agentId: 'legacy-cron', resourceArn: podArn(API, 'api', 1), action: 'restart' });
    expect(legacy.status).toBe('EXECUTED');
  });

  it('a signed request replayed an hour later: rejected as a replay; a signed record keyed off its scope is re-routed and still verifies', async () => {
    const serde = new Serde(endpoints.schemaRegistryUrl, topicNames(env.prefix));
    const producer = new Kafka({ brokers: [endpoints.kafkaBrokers], logLevel: logLevel.NOTHING }).producer();
    await producer.connect();
    const key = parsePrivateKey(P.privateKeyPem);
    const watcher = await client();
    try {
      const old = buildRequest({ agentId: 'agent-p', resourceArn: POD, action: 'restart' }, Date.now() - 3_600_000);
      const oldValue = await serde.encodeRequest(old);
      const fresh = buildRequest({ agentId: 'agent-p', resourceArn: podArn(API, 'api', 2), action: 'restart' });
      const freshValue = await serde.encodeRequest(fresh);
      await producer.send({
        topic: topicNames(env.prefix).requests,
        messages: [
          { key: API, value: oldValue, headers: { [SIGNATURE_HEADER]: signValue(key, oldValue) } },
          // Keyed by the pod's ARN rather than its scope: moved to the scope's partition, signature and all.
          { key: fresh.resourceArn, value: freshValue, headers: { [SIGNATURE_HEADER]: signValue(key, freshValue) } },
        ],
      });
      const replay = await watcher.awaitOutcome(old.requestId, { timeoutMs: 60_000 });
      expect(replay.status).toBe('REJECTED_UNAUTHORIZED');
      expect((await decision(old.requestId)).detail).toMatch(/made 3600 s ago, outside the 600 s freshness window: a replay/);
      const moved = await watcher.awaitOutcome(fresh.requestId, { timeoutMs: 60_000 });
      expect(moved.status).toBe('EXECUTED');
      const statuses = await env.db.query('SELECT status FROM arbiter.decisions WHERE request_id = $1 ORDER BY decided_at', [fresh.requestId]);
      expect(statuses.rows.map((r) => r.status)).toContain('REROUTED');
    } finally {
      await producer.disconnect();
    }
  });

  it('outcomes are signed by Arbiter: an SDK that trusts its key ignores a forged outcome and gets the real one', async () => {
    const pod = podArn(API, 'api', 3);
    const { ArbiterLocks } = await import('../../src/agent-sdk/index.ts');
    const holder = new ArbiterLocks(env.databaseUrl, 'lock-holder');
    const lease = await holder.acquire(pod, 60_000);
    if (!lease.acquired) throw new Error('could not take the lock');
    const serde = new Serde(endpoints.schemaRegistryUrl, topicNames(env.prefix));
    const producer = new Kafka({ brokers: [endpoints.kafkaBrokers], logLevel: logLevel.NOTHING }).producer();
    await producer.connect();
    try {
      const p = await client(P.privateKeyPem, [ARBITER.publicKey]);
      const request = await p.submit({ agentId: 'agent-p', resourceArn: pod, action: 'restart' });
      const answer = p.awaitOutcome(request.requestId, { timeoutMs: 60_000 });
      // While the worker waits for the lock, someone publishes a final outcome of their own making.
      const forged = { requestId: request.requestId, agentId: 'agent-p', resourceArn: pod, action: 'restart', scope: API, status: 'EXECUTED' as const, final: true, primaryRequestId: null, resourceVersion: 99, fencingToken: null, detail: 'forged', requestedAt: null, decidedAt: Date.now(), completedAt: Date.now(), workerId: 'forger' };
      const value = await serde.encodeOutcome(forged);
      await producer.send({ topic: topicNames(env.prefix).outcomes, messages: [{ key: API, value }, { key: API, value, headers: { [SIGNATURE_HEADER]: signValue(parsePrivateKey(P.privateKeyPem), value) } }] });
      await new Promise((r) => setTimeout(r, 1_500));
      await holder.release(pod, lease.fencingToken);
      const outcome = await answer;
      expect(outcome).toMatchObject({ status: 'EXECUTED' });
      expect(outcome.workerId).not.toBe('forger');
      expect(outcome.detail).not.toBe('forged');
    } finally {
      await producer.disconnect();
      await holder.close();
    }
  });

  it('plans: a command signed by its agent runs (its steps signed by Arbiter); one claiming that agent unsigned is REJECTED', async () => {
    const p = await client(P.privateKeyPem);
    const good = await p.plan([{ action: 'hotfix', resourceArn: API, params: { patch: 'signed' } }], { agentId: 'agent-p' }).submit();
    expect((await good.wait({ timeoutMs: 60_000 })).status).toBe('SUCCEEDED');
    const step = await env.db.query(`SELECT status FROM arbiter.request_state WHERE request_id = $1`, [good.requestIds[0]]);
    expect(step.rows[0].status).toBe('EXECUTED');

    const impostor = await client();
    const bad = await impostor.plan([{ action: 'restart', resourceArn: podArn(API, 'api', 1) }], { agentId: 'agent-p' }).submit();
    const result = await bad.wait({ timeoutMs: 60_000 });
    expect(result.status).toBe('REJECTED');
    expect(result.events[0]!.detail).toBe('agent agent-p has a registered key but the request is not signed');
  });

  it('`arbiter keys generate --agent NAME` prints a key pair and the policy line', async () => {
    const { runArbiterCli } = await import('../support/cli.ts');
    const run = await runArbiterCli(['keys', 'generate', '--agent', 'agent-z', '--json'], env.cliEnv);
    expect(run.code, run.stderr).toBe(0);
    const out = JSON.parse(run.stdout) as { privateKeyPem: string; publicKey: string; policyLine: string };
    expect(out.privateKeyPem).toContain('BEGIN PRIVATE KEY');
    expect(out.policyLine).toBe(`"agent-z": ${out.publicKey}`);
    expect(() => parsePrivateKey(out.privateKeyPem)).not.toThrow();
  });
});
