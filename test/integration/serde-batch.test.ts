import { randomBytes } from 'node:crypto';
import { SchemaRegistry } from '@kafkajs/confluent-schema-registry';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ArbiterError } from '../../src/contract/errors.ts';
import type { RemediationOutcome } from '../../src/contract/outcome.ts';
import { buildRequest } from '../../src/contract/request.ts';
import { Serde } from '../../src/contract/serde.ts';
import { topicNames } from '../../src/contract/topics.ts';
import { removeInstallation } from '../support/cleanup.ts';
import { endpoints } from '../support/endpoints.ts';

// The worker's batch paths (decodeRequests, encodeOutcomes) against the real registry: the bytes are
// what the registry client would write, and one bad record never costs its neighbours.
const prefix = `serde-batch-${randomBytes(4).toString('hex')}`;
const serde = new Serde(endpoints.schemaRegistryUrl, topicNames(prefix));
const client = new SchemaRegistry({ host: endpoints.schemaRegistryUrl });

function outcome(i: number, detail: string | null = null): RemediationOutcome {
  return {
    requestId: `0190a6d2-0000-7000-8000-${String(i).padStart(12, '0')}`,
    agentId: `agent-${i}`,
    resourceArn: `arn:sim:k8s:local:000000000000:cluster/prod/ns/a/deployment/api/pod/api-${i}`,
    action: 'restart',
    scope: 'arn:sim:k8s:local:000000000000:cluster/prod/ns/a/deployment/api',
    status: 'COALESCED',
    final: true,
    primaryRequestId: '0190a6d2-0000-7000-8000-000000000000',
    resourceVersion: i,
    fencingToken: null,
    detail,
    requestedAt: 1_700_000_000_000 + i,
    decidedAt: 1_700_000_000_500 + i,
    completedAt: null,
    workerId: 'w1',
  };
}

beforeAll(async () => {
  await serde.register();
}, 30_000);

afterAll(async () => {
  await removeInstallation(prefix);
}, 60_000);

describe('Serde batch paths', () => {
  it('encodeOutcomes writes, byte for byte, what the registry client writes — including records larger than its scratch buffer', async () => {
    const outcomes = [outcome(1), outcome(2, 'short'), outcome(3, 'x'.repeat(100_000)), outcome(4)];
    const encoded = await serde.encodeOutcomes(outcomes);
    expect(encoded).toHaveLength(outcomes.length);
    for (const [i, o] of outcomes.entries()) {
      expect(encoded[i]!.equals(await client.encode(serde.schemaIds.outcome, o))).toBe(true);
      expect(await serde.decodeOutcome(encoded[i]!)).toEqual(o);
    }
    // Each record owns its bytes: a later encode does not overwrite an earlier one.
    expect((await serde.decodeOutcome(encoded[0]!)).requestId).toBe(outcomes[0]!.requestId);
  });

  it('encodeOutcomes refuses a value the schema does not allow, naming the problem', async () => {
    const bad = { ...outcome(5), decidedAt: 'yesterday' } as unknown as RemediationOutcome;
    await expect(serde.encodeOutcomes([outcome(6), bad])).rejects.toThrow(/yesterday|invalid/i);
  });

  it('decodeRequests answers each record in its place: requests decoded, bad records as DECODE_FAILED errors', async () => {
    const a = buildRequest({ agentId: 'a', resourceArn: 'arn:sim:k8s:local:0:cluster/c/ns/n/deployment/d/pod/p-1', action: 'restart' });
    const b = buildRequest({ agentId: 'b', resourceArn: 'arn:sim:k8s:local:0:cluster/c/ns/n/deployment/d/pod/p-2', action: 'drain', reason: 'r' });
    const goodA = await serde.encodeRequest(a);
    const goodB = await serde.encodeRequest(b);
    const unknownSchema = Buffer.from(goodA);
    unknownSchema.writeUInt32BE(987_654_321, 1);
    const truncated = goodB.subarray(0, goodB.length - 3);
    const results = await serde.decodeRequests([goodA, Buffer.from('not avro'), null, unknownSchema, truncated, goodB]);
    expect(results[0]).toEqual(a);
    expect(results[5]).toEqual(b);
    for (const i of [1, 2, 3, 4]) {
      expect(results[i]).toBeInstanceOf(ArbiterError);
      expect((results[i] as ArbiterError).code).toBe('DECODE_FAILED');
    }
    expect((results[1] as ArbiterError).message).toMatch(/not Confluent-framed/);
    expect((results[3] as ArbiterError).message).toMatch(/schema id 987654321/);
  });

  it('decodeRequests throws REGISTRY_UNAVAILABLE (retryable) when a writer schema cannot be fetched, dead-lettering nothing', async () => {
    const offline = new Serde('http://127.0.0.1:9/apis/ccompat/v7', topicNames(prefix), { callTimeoutMs: 2_000 });
    const record = await serde.encodeRequest(buildRequest({ agentId: 'a', resourceArn: 'arn:sim:k8s:local:0:cluster/c/ns/n/deployment/d/pod/p-1', action: 'restart' }));
    const error = await offline.decodeRequests([record]).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ArbiterError);
    expect((error as ArbiterError).code).toBe('REGISTRY_UNAVAILABLE');
    expect((error as ArbiterError).retryable).toBe(true);
  }, 30_000);
});
