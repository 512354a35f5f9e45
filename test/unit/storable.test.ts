import { describe, expect, it } from 'vitest';
import { buildRequest } from '../../src/contract/request.ts';
import { isSameRequest, storableRequest } from '../../src/audit/storable.ts';

const base = buildRequest({ agentId: 'agent-1', resourceArn: 'arn:sim:k8s:local:0:cluster/c/ns/n/deployment/d/pod/p-1', action: 'restart', params: { replicas: '3' } }, 1_700_000_000_000);

describe('storableRequest', () => {
  it('a request that is storable as it is comes back as it is (no copy on the hot path)', () => {
    expect(storableRequest(base)).toBe(base);
  });

  it.each([
    ['a NUL in a param value', { params: { note: 'a\0b' } }, (r: ReturnType<typeof storableRequest>) => expect(r.params.note).toBe('a\uFFFDb')],
    ['a NUL in a param key', { params: { ['k\0']: 'v' } }, (r: ReturnType<typeof storableRequest>) => expect(Object.keys(r.params)).toEqual(['k\uFFFD'])],
    ['a reason beyond 8 KiB', { reason: 'x'.repeat(9_000) }, (r: ReturnType<typeof storableRequest>) => expect(r.reason).toHaveLength(8_192)],
    ['an agent id beyond 1 KiB', { agentId: 'a'.repeat(2_000) }, (r: ReturnType<typeof storableRequest>) => expect(r.agentId.endsWith('…')).toBe(true)],
    ['a time no database holds', { requestedAt: Number.POSITIVE_INFINITY }, (r: ReturnType<typeof storableRequest>) => expect(r.requestedAt).toBe(0)],
    ['a deadline that is not a time', { deadline: Number.NaN }, (r: ReturnType<typeof storableRequest>) => expect(r.deadline).toBeNull()],
    ['more than 128 dependencies', { dependsOn: Array.from({ length: 200 }, (_, i) => `dep-${i}`) }, (r: ReturnType<typeof storableRequest>) => expect(r.dependsOn).toHaveLength(128)],
    ['more than 128 params', { params: Object.fromEntries(Array.from({ length: 200 }, (_, i) => [`k${i}`, 'v'])) }, (r: ReturnType<typeof storableRequest>) => expect(Object.keys(r.params)).toHaveLength(128)],
  ])('%s: a bounded copy, the original untouched', (_name, change, check) => {
    const request = { ...base, ...change };
    const stored = storableRequest(request);
    expect(stored).not.toBe(request);
    check(stored);
    expect(request).toEqual({ ...base, ...change });
    // What is stored is storable: storing it again changes nothing.
    expect(storableRequest(stored)).toBe(stored);
  });

  it('a redelivery is recognised whether or not its stored form was copied', () => {
    expect(isSameRequest(storableRequest(base), base)).toBe(true);
    const long = { ...base, reason: 'x'.repeat(9_000) };
    expect(isSameRequest(storableRequest(long), long)).toBe(true);
    expect(isSameRequest(storableRequest(long), { ...long, reason: 'y'.repeat(9_000) })).toBe(false);
  });
});
