import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { FollowerList, type AnsweredRequest } from '../../src/worker/follower-list.ts';

const ARN = 'arn:sim:k8s:local:000000000000:cluster/prod/ns/api/deployment/api/pod/api-0';
const SCOPE = 'arn:sim:k8s:local:000000000000:cluster/prod/ns/api/deployment/api';
const primary = { request: { resourceArn: ARN, action: 'restart' as const }, scope: SCOPE };

function duplicate(overrides: Partial<AnsweredRequest> = {}): AnsweredRequest {
  // Decoded separately from the primary: equal strings, not the same ones.
  return { requestId: randomUUID(), agentId: `agent-${Math.floor(Math.random() * 5)}`, requestedAt: 1_796_000_000_000 + Math.floor(Math.random() * 1e6), resourceArn: ARN.slice(0), action: 'restart', ...overrides };
}

describe('FollowerList', () => {
  it('gives back every follower as it was pushed, in order, across growth of its buffer', () => {
    const list = new FollowerList(primary);
    const pushed = Array.from({ length: 1_000 }, () => duplicate());
    for (const d of pushed) list.push(d, SCOPE);
    expect(list.length).toBe(1_000);
    expect(list.toArray()).toEqual(pushed.map((request) => ({ request, scope: SCOPE })));
  });

  it('keeps whole, in their place, the followers the packed form cannot hold', () => {
    const list = new FollowerList(primary);
    const odd = [
      duplicate({ resourceArn: `${ARN}-other` }),
      duplicate({ action: 'drain' }),
      duplicate({ requestId: 'not-a-uuid' }),
      duplicate({ requestId: randomUUID().toUpperCase() }),
      duplicate({ requestId: randomUUID().replace(/-/g, '_') }),
    ];
    const pushed = [duplicate(), ...odd, duplicate()];
    for (const d of pushed) list.push(d, SCOPE);
    list.push(duplicate(), `${SCOPE}-other`);
    const out = list.toArray();
    expect(out.slice(0, pushed.length)).toEqual(pushed.map((request) => ({ request, scope: SCOPE })));
    expect(out.at(-1)!.scope).toBe(`${SCOPE}-other`);
  });

  it('finds a follower by id, and forgets them all when cleared', () => {
    const list = new FollowerList(primary);
    const a = duplicate();
    const b = duplicate({ requestId: 'odd-id' });
    list.push(a, SCOPE);
    list.push(b, SCOPE);
    expect(list.has(a.requestId)).toBe(true);
    expect(list.has('odd-id')).toBe(true);
    expect(list.has(randomUUID())).toBe(false);
    list.clear();
    expect(list.length).toBe(0);
    expect(list.toArray()).toEqual([]);
    expect(list.has(a.requestId)).toBe(false);
    list.push(b, SCOPE);
    expect(list.toArray()).toEqual([{ request: b, scope: SCOPE }]);
  });

  it('answers with as many agents as a deployment has, beyond the table of names too', () => {
    const list = new FollowerList(primary);
    const pushed = Array.from({ length: 70_000 }, (_, i) => duplicate({ agentId: `made-up-${i}` }));
    for (const d of pushed) list.push(d, SCOPE);
    const out = list.toArray();
    expect(out.map((f) => f.request.agentId)).toEqual(pushed.map((d) => d.agentId));
  });
});
