import { describe, expect, it } from 'vitest';
import type { ObservedChange, ResourceObservation } from '../../src/contract/observation.ts';
import { findInconsistencies, type ArbiterView } from '../../src/detect/index.ts';

const ARN = 'arn:sim:k8s:local:000000000000:cluster/prod/ns/shop/deployment/web';
const T = 1_800_000_000_000;
const change = (requestId: string, agentId: string, action: string, version: number, basedOnVersion: number | null = null, at = T): ObservedChange => ({ requestId, agentId, action, version, basedOnVersion, at });
const obs = (recentChanges: ObservedChange[], effectiveRequestIds: string[] | null = null, version = recentChanges.at(-1)?.version ?? 1): ResourceObservation => ({
  observationId: 'o-2',
  resourceArn: ARN,
  version,
  state: '{}',
  source: 'executor:test',
  observedAt: T,
  effectiveRequestIds,
  recentChanges,
});
const view = (over: Partial<ArbiterView> = {}): ArbiterView => ({ lastVerified: null, decidedByArbiter: new Set(), previous: null, conflictWindowMs: 300_000, ...over });
const kinds = (o: ResourceObservation, v: ArbiterView) => findInconsistencies(o, v).map((f) => `${f.kind} ${f.fingerprint}`);

describe('detector rules', () => {
  const verifiedHotfix = { version: 2, requestId: 'h1', action: 'hotfix', agentId: 'bot' };

  it('drift: only a change Arbiter never decided, newer than its last verified change', () => {
    const o = obs([change('h1', 'bot', 'hotfix', 2), change('k1', 'person:alice', 'scale', 3)], ['h1']);
    expect(kinds(o, view({ lastVerified: verifiedHotfix, decidedByArbiter: new Set(['h1']) }))).toEqual([`drift drift:${ARN}:k1`]);
    // Arbiter decided k1 too: nothing. Nothing verified yet: no reference, nothing.
    expect(kinds(o, view({ lastVerified: verifiedHotfix, decidedByArbiter: new Set(['h1', 'k1']) }))).toEqual([]);
    expect(kinds(o, view())).toEqual([]);
  });

  it('lost_change: a hotfix no longer in effect, removed by a change not based on it; not when the remover knew, or Arbiter decided it', () => {
    const erased = obs([change('h1', 'bot', 'hotfix', 2), change('r1', 'script', 'rollback', 3)], []);
    expect(kinds(erased, view({ decidedByArbiter: new Set(['h1']) }))).toContain('lost_change lost_change:h1');
    const informed = obs([change('h1', 'bot', 'hotfix', 2), change('r1', 'script', 'rollback', 3, 2)], []);
    expect(kinds(informed, view())).toEqual([]);
    expect(kinds(erased, view({ decidedByArbiter: new Set(['h1', 'r1']) }))).toEqual([]);
    // Still in effect: nothing lost. An observer that cannot tell (null): no guess.
    expect(kinds(obs([change('h1', 'bot', 'hotfix', 2), change('h2', 'bot2', 'hotfix', 3, 2)], ['h1', 'h2']), view())).toEqual([]);
    expect(kinds(obs([change('h1', 'bot', 'hotfix', 2), change('r1', 'script', 'rollback', 3)], null), view())).toEqual([]);
  });

  it('conflicting_commits: a second change by another agent within the window, based on a version before the first', () => {
    const o = obs([change('a', 'agent-a', 'hotfix', 2, 1, T), change('b', 'agent-b', 'deploy', 3, 1, T + 1_000)], null);
    const found = findInconsistencies(o, view());
    expect(found.map((f) => f.fingerprint)).toEqual(['conflicting_commits:a:b']);
    expect(found[0]!.evidence.agents).toEqual(['agent-a', 'agent-b']);
    // Outside the window, by the same agent, based on the first, or both decided by Arbiter: none.
    expect(kinds(obs([change('a', 'agent-a', 'hotfix', 2, 1, T), change('b', 'agent-b', 'deploy', 3, 1, T + 400_000)]), view())).toEqual([]);
    expect(kinds(obs([change('a', 'agent-a', 'hotfix', 2, 1), change('b', 'agent-a', 'deploy', 3, 1)]), view())).toEqual([]);
    expect(kinds(obs([change('a', 'agent-a', 'hotfix', 2, 1), change('b', 'agent-b', 'deploy', 3, 2)]), view())).toEqual([]);
    expect(kinds(o, view({ decidedByArbiter: new Set(['a', 'b']) }))).toEqual([]);
    // Restarts do not conflict.
    expect(kinds(obs([change('a', 'agent-a', 'restart', 2, 1), change('b', 'agent-b', 'restart', 3, 1)]), view())).toEqual([]);
  });
});
