import { describe, expect, it } from 'vitest';
import { buildRequest, type RemediationRequest } from '../../src/contract/request.ts';
import {
  checkBudget,
  checkConflict,
  checkStale,
  resolveMinAvailable,
  validateRequest,
  type ConflictRules,
  type RecentChange,
  type RequestLimits,
} from '../../src/decide/index.ts';

describe('checkStale', () => {
  it('passes a request that names no expected version', () => {
    expect(checkStale({ expectedVersion: null }, 7)).toBeNull();
  });

  it('passes a request based on the current version', () => {
    expect(checkStale({ expectedVersion: 7 }, 7)).toBeNull();
    expect(checkStale({ expectedVersion: 0 }, 0)).toBeNull();
  });

  it.each([
    [6, 7],
    [8, 7],
  ])('rejects expected version %i when the resource is at %i, naming both', (expected, current) => {
    const reason = checkStale({ expectedVersion: expected }, current);
    expect(reason).not.toBeNull();
    expect(reason).toContain(`expected version ${expected}`);
    expect(reason).toContain(`version ${current}`);
  });
});

describe('checkConflict', () => {
  const rules: ConflictRules = {
    windowMs: 300_000,
    pairs: [
      ['rollback', 'hotfix'],
      ['rollback', 'deploy'],
    ],
  };
  const NOW = 1_000_000;

  function change(overrides: Partial<RecentChange> = {}): RecentChange {
    return { requestId: 'req-hotfix', agentId: 'agent-b', action: 'hotfix', at: NOW - 60_000, resourceVersion: 5, ...overrides };
  }

  it('rejects a rollback after another agent’s hotfix, naming the change', () => {
    const reason = checkConflict({ agentId: 'agent-a', action: 'rollback', expectedVersion: null }, [change()], rules, NOW);
    expect(reason).not.toBeNull();
    expect(reason).toContain('rollback conflicts with hotfix');
    expect(reason).toContain('agent-b');
    expect(reason).toContain('req-hotfix');
    expect(reason).toContain('60s ago');
  });

  it('applies the matrix in both directions', () => {
    const hotfixAfterRollback = checkConflict(
      { agentId: 'agent-a', action: 'hotfix', expectedVersion: null },
      [change({ action: 'rollback' })],
      rules,
      NOW,
    );
    expect(hotfixAfterRollback).toContain('hotfix conflicts with rollback');
    const deployAfterRollback = checkConflict(
      { agentId: 'agent-a', action: 'deploy', expectedVersion: null },
      [change({ action: 'rollback' })],
      rules,
      NOW,
    );
    expect(deployAfterRollback).toContain('deploy conflicts with rollback');
  });

  it('passes pairs the matrix does not list', () => {
    // hotfix × deploy is a default pair in the config, but not in these rules.
    expect(checkConflict({ agentId: 'agent-a', action: 'deploy', expectedVersion: null }, [change()], rules, NOW)).toBeNull();
    expect(
      checkConflict({ agentId: 'agent-a', action: 'restart', expectedVersion: null }, [change({ action: 'rollback' })], rules, NOW),
    ).toBeNull();
  });

  it('never lets an agent conflict with itself', () => {
    expect(
      checkConflict({ agentId: 'agent-b', action: 'rollback', expectedVersion: null }, [change({ agentId: 'agent-b' })], rules, NOW),
    ).toBeNull();
  });

  it('ignores changes at or beyond the window', () => {
    const request = { agentId: 'agent-a', action: 'rollback', expectedVersion: null };
    expect(checkConflict(request, [change({ at: NOW - rules.windowMs })], rules, NOW)).toBeNull();
    expect(checkConflict(request, [change({ at: NOW - rules.windowMs - 1 })], rules, NOW)).toBeNull();
    expect(checkConflict(request, [change({ at: NOW - rules.windowMs + 1 })], rules, NOW)).not.toBeNull();
  });

  it('passes a requester that had seen the change (expectedVersion at or after its version)', () => {
    const recent = [change({ resourceVersion: 5 })];
    expect(checkConflict({ agentId: 'agent-a', action: 'rollback', expectedVersion: 5 }, recent, rules, NOW)).toBeNull();
    expect(checkConflict({ agentId: 'agent-a', action: 'rollback', expectedVersion: 6 }, recent, rules, NOW)).toBeNull();
    expect(checkConflict({ agentId: 'agent-a', action: 'rollback', expectedVersion: 4 }, recent, rules, NOW)).not.toBeNull();
  });

  it('cannot call a change seen when it produced no version', () => {
    const recent = [change({ resourceVersion: null })];
    expect(checkConflict({ agentId: 'agent-a', action: 'rollback', expectedVersion: 99 }, recent, rules, NOW)).not.toBeNull();
  });

  it('finds the conflicting change among harmless ones', () => {
    const recent = [
      change({ requestId: 'mine', agentId: 'agent-a' }),
      change({ requestId: 'old', at: NOW - 400_000 }),
      change({ requestId: 'restart', action: 'restart' }),
      change({ requestId: 'the-one' }),
    ];
    const reason = checkConflict({ agentId: 'agent-a', action: 'rollback', expectedVersion: null }, recent, rules, NOW);
    expect(reason).toContain('the-one');
    expect(checkConflict({ agentId: 'agent-a', action: 'rollback', expectedVersion: null }, [], rules, NOW)).toBeNull();
  });
});

describe('resolveMinAvailable', () => {
  it.each([
    [3, 10, 3],
    [0, 10, 0],
    ['3', 10, 3],
    ['50%', 4, 2],
    ['50%', 3, 2],
    ['50%', 1, 1],
    ['34%', 3, 2],
    ['1%', 100, 1],
    ['1%', 1, 1],
    ['100%', 5, 5],
    ['0%', 5, 0],
    ['50%', 0, 0],
  ] as const)('resolves %j of %i desired to %i (percentages rounded up)', (spec, desired, expected) => {
    expect(resolveMinAvailable(spec, desired)).toBe(expected);
  });
});

describe('checkBudget', () => {
  it('allows a disruption that leaves exactly the minimum', () => {
    expect(checkBudget({ desired: 3, available: 3, minAvailable: 2 })).toBeNull();
  });

  it('refuses one that would leave one below the minimum, saying by how much', () => {
    const reason = checkBudget({ desired: 3, available: 2, minAvailable: 2 });
    expect(reason).toBe('would leave 1 of 3 available, below the minimum of 2');
  });

  it('counts nothing extra when the action takes no further replica away', () => {
    expect(checkBudget({ desired: 3, available: 2, minAvailable: 2 }, 0)).toBeNull();
    expect(checkBudget({ desired: 3, available: 1, minAvailable: 2 }, 0)).toBe('would leave 1 of 3 available, below the minimum of 2');
  });

  it('weighs several replicas at once', () => {
    expect(checkBudget({ desired: 5, available: 5, minAvailable: 3 }, 2)).toBeNull();
    expect(checkBudget({ desired: 5, available: 5, minAvailable: 3 }, 3)).not.toBeNull();
  });

  it('lets a workload with no minimum go to zero, but not below', () => {
    expect(checkBudget({ desired: 1, available: 1, minAvailable: 0 })).toBeNull();
    expect(checkBudget({ desired: 1, available: 0, minAvailable: 0 })).not.toBeNull();
  });
});

describe('validateRequest', () => {
  const limits: RequestLimits = { maxParams: 4, maxParamBytes: 128, maxDependsOn: 3, maxIdLength: 32, maxReasonBytes: 64 };
  const UUID_A = '3f2b1c9e-8d7a-4e6f-9b1a-2c3d4e5f6a7b';
  const UUID_B = 'A1B2C3D4-E5F6-4789-8ABC-DEF012345678';

  function request(overrides: Partial<RemediationRequest> = {}): RemediationRequest {
    return {
      ...buildRequest(
        {
          requestId: UUID_A,
          agentId: 'agent-a',
          resourceArn: 'arn:aws:k8s:us-east-1:123456789012:cluster/prod/ns/payments/deployment/api/pod/api-7d9f',
          action: 'restart',
          params: { grace: '30' },
          dependsOn: [UUID_B],
          expectedVersion: 3,
        },
        1_700_000_000_000,
      ),
      ...overrides,
    };
  }

  it('finds nothing wrong with a valid request', () => {
    expect(validateRequest(request(), limits)).toEqual([]);
    expect(validateRequest(request({ expectedVersion: null, dependsOn: [], params: {} }), limits)).toEqual([]);
    expect(validateRequest(request({ expectedVersion: 0 }), limits)).toEqual([]);
  });

  it('accepts exactly the limits', () => {
    const params = { a: '1', b: '2', c: '3', d: '4' };
    const atLimit = request({ params, dependsOn: [UUID_A, UUID_B, UUID_A], agentId: 'x'.repeat(32) });
    expect(validateRequest(atLimit, limits)).toEqual([]);
  });

  it('rejects a requestId that is not a UUID', () => {
    const problems = validateRequest(request({ requestId: 'not-a-uuid' }), limits);
    expect(problems).toHaveLength(1);
    expect(problems[0]).toContain("requestId 'not-a-uuid' is not a UUID");
  });

  it('rejects an unknown action', () => {
    expect(validateRequest(request({ action: 'reboot-the-world' }), limits)).toEqual(["unknown action 'reboot-the-world'"]);
  });

  it('rejects an empty or overlong agentId', () => {
    expect(validateRequest(request({ agentId: '' }), limits)).toEqual(['agentId must be 1..32 characters']);
    expect(validateRequest(request({ agentId: 'x'.repeat(33) }), limits)).toEqual(['agentId must be 1..32 characters']);
  });

  it('rejects too many params', () => {
    const params = { a: '1', b: '2', c: '3', d: '4', e: '5' };
    expect(validateRequest(request({ params }), limits)).toEqual(['5 params, more than the limit of 4']);
  });

  it('rejects params that take too many bytes', () => {
    const problems = validateRequest(request({ params: { blob: 'x'.repeat(200) } }), limits);
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/^params take \d+ bytes, more than the limit of 128$/);
  });

  it('counts bytes, not characters', () => {
    // 41 three-byte characters: 49 characters of JSON ({"k":"…"}), but 131 bytes.
    const problems = validateRequest(request({ params: { k: '€'.repeat(41) } }), limits);
    expect(problems).toEqual(['params take 131 bytes, more than the limit of 128']);
    // 40 of them make exactly 128 bytes: at the limit, allowed.
    expect(validateRequest(request({ params: { k: '€'.repeat(40) } }), limits)).toEqual([]);
  });

  it('rejects dependsOn ids that are not UUIDs, and too many of them', () => {
    expect(validateRequest(request({ dependsOn: [UUID_B, 'step-1'] }), limits)).toEqual(["dependsOn id 'step-1' is not a UUID"]);
    const problems = validateRequest(request({ dependsOn: [UUID_A, UUID_A, UUID_A, UUID_A] }), limits);
    expect(problems).toEqual(['dependsOn has 4 ids, more than the limit of 3']);
  });

  it('rejects a negative expectedVersion', () => {
    expect(validateRequest(request({ expectedVersion: -1 }), limits)).toEqual(['expectedVersion must not be negative']);
  });

  it('lists every problem at once, and truncates what it echoes', () => {
    const problems = validateRequest(
      request({ requestId: 'z'.repeat(500), action: 'nope', expectedVersion: -2, dependsOn: ['bad'] }),
      limits,
    );
    expect(problems).toHaveLength(4);
    expect(problems[0]).toBe(`requestId '${'z'.repeat(64)}' is not a UUID`);
  });
});

describe('validateRequest: poison pills that decode but must never reach a database cast', () => {
  const limits: RequestLimits = { maxParams: 4, maxParamBytes: 128, maxDependsOn: 3, maxIdLength: 32, maxReasonBytes: 64 };
  const base = buildRequest({ agentId: 'agent-a', resourceArn: 'arn:aws:k8s:us-east-1:1:cluster/prod/ns/p/deployment/api/pod/x', action: 'restart' }, 1_700_000_000_000);

  it.each<[string, Partial<RemediationRequest>, RegExp]>([
    ['a NUL in the reason', { reason: 'oom\0killer' }, /NUL characters are not allowed \(in reason\)/],
    ['a NUL in a param', { params: { grace: '3\0' } }, /NUL characters are not allowed \(in params\)/],
    ['a NUL in the agent id', { agentId: 'a\0b' }, /in agentId/],
    ['a deadline beyond any date', { deadline: 9e15 }, /deadline 9000000000000000 is not a valid time/],
    ['a requestedAt beyond any date', { requestedAt: 9e15 }, /requestedAt 9000000000000000 is not a valid time/],
    ['a reason over the limit', { reason: 'x'.repeat(65) }, /reason takes 65 bytes, more than the limit of 64/],
    ['an overlong incident id', { incidentId: 'i'.repeat(33) }, /incidentId must be at most 32 characters/],
    ['an overlong plan id', { planId: 'p'.repeat(33) }, /planId must be at most 32 characters/],
  ])('rejects %s', (_what, overrides, problem) => {
    const problems = validateRequest({ ...base, ...overrides }, limits);
    expect(problems.join('; ')).toMatch(problem);
  });

  it('echoes a NUL in an id as \\0, never as the character itself', () => {
    const [problem] = validateRequest({ ...base, requestId: 'abc\0def' }, limits);
    expect(problem).toContain("'abc\\0def'");
    expect(problem).not.toContain('\0');
  });
});
