import { describe, expect, it } from 'vitest';
import { compilePolicy, InvalidPolicyError, parseArn, type PolicyConfig } from '../../src/routing/index.ts';

const HEAD = 'arn:aws:k8s:us-east-1:123456789012:';
const PROD_POD = parseArn(`${HEAD}cluster/prod/ns/payments/deployment/api/pod/api-7d9f`);
const PROD_DEPLOYMENT = parseArn(`${HEAD}cluster/prod/ns/payments/deployment/api`);
const STAGING_POD = parseArn(`${HEAD}cluster/staging/ns/payments/deployment/api/pod/api-1`);
const NODE = parseArn(`${HEAD}cluster/prod/node/ip-10-0-1-2`);

function problemsOf(config: unknown): readonly string[] {
  try {
    compilePolicy(config as PolicyConfig);
  } catch (error) {
    if (error instanceof InvalidPolicyError) return error.problems;
    throw error;
  }
  throw new Error('expected InvalidPolicyError');
}

describe('compilePolicy', () => {
  const policy = compilePolicy({
    defaultEffect: 'deny',
    reservedTypes: { node: 'node-lifecycle' },
    rules: [
      { agents: ['*'], actions: ['restart'], arns: [`${HEAD}cluster/*/ns/*/deployment/*/pod/*`], effect: 'allow' },
      { agents: ['deployer-*'], actions: ['rollback', 'deploy', 'hotfix'], arns: ['arn:aws:k8s:*:*:cluster/**'], effect: 'allow' },
      { name: 'no-prod-hotfix-by-bots', agents: ['*-bot'], actions: ['hotfix'], arns: ['arn:*:*:*:*:cluster/prod/**'], effect: 'deny' },
      { agents: ['node-lifecycle'], actions: ['drain', 'terminate'], arns: ['**'], effect: 'allow' },
      { agents: ['*'], actions: ['*'], arns: [`${HEAD}cluster/prod/ns/payments/**`], effect: 'deny' },
    ],
  });

  it('allows what an allow rule covers', () => {
    expect(policy.authorize('any-agent', 'restart', STAGING_POD)).toEqual({ allowed: true });
    expect(policy.authorize('deployer-bot', 'hotfix', STAGING_POD)).toEqual({ allowed: true });
    expect(policy.authorize('node-lifecycle', 'drain', NODE)).toEqual({ allowed: true });
  });

  it('lets a deny rule win over an earlier allow, naming the rule', () => {
    expect(policy.authorize('deployer-bot', 'hotfix', PROD_DEPLOYMENT)).toEqual({
      allowed: false,
      reason: `policy rule 2 ('no-prod-hotfix-by-bots') denies agent 'deployer-bot' action 'hotfix' on ${PROD_DEPLOYMENT.text}`,
    });
    expect(policy.authorize('any-agent', 'restart', PROD_POD)).toEqual({
      allowed: false,
      reason: `policy rule 4 denies agent 'any-agent' action 'restart' on ${PROD_POD.text}`,
    });
  });

  it('falls back to the default effect', () => {
    expect(policy.authorize('any-agent', 'scale', STAGING_POD)).toEqual({
      allowed: false,
      reason: `no policy rule allows agent 'any-agent' action 'scale' on ${STAGING_POD.text}, and the default effect is deny`,
    });
    const open = compilePolicy({ defaultEffect: 'allow', reservedTypes: {}, rules: [] });
    expect(open.authorize('a', 'terminate', NODE)).toEqual({ allowed: true });
  });

  it('reserves a resource type to its one writer, whatever the rules say', () => {
    expect(policy.authorize('deployer-1', 'drain', NODE)).toEqual({
      allowed: false,
      reason: "resource type 'node' is reserved to writer agent 'node-lifecycle'",
    });
    const open = compilePolicy({ defaultEffect: 'allow', reservedTypes: { node: 'node-lifecycle' }, rules: [] });
    expect(open.authorize('other', 'drain', NODE)).toMatchObject({ allowed: false });
    expect(open.authorize('node-lifecycle', 'drain', NODE)).toEqual({ allowed: true });
    expect(open.authorize('other', 'restart', PROD_POD)).toEqual({ allowed: true });
  });

  it('does not let the reserved writer past a deny rule', () => {
    const strict = compilePolicy({
      defaultEffect: 'allow',
      reservedTypes: { node: 'node-lifecycle' },
      rules: [{ agents: ['*'], actions: ['terminate'], arns: ['**'], effect: 'deny' }],
    });
    expect(strict.authorize('node-lifecycle', 'terminate', NODE)).toMatchObject({ allowed: false, reason: expect.stringContaining('policy rule 0') });
  });

  it('ignores inherited object keys when looking up reserved types', () => {
    const open = compilePolicy({ defaultEffect: 'allow', reservedTypes: {}, rules: [] });
    expect(open.authorize('a', 'restart', parseArn('arn:aws:k8s:::constructor/x'))).toEqual({ allowed: true });
  });

  it('matches ARN globs segment by segment: * stays inside a segment, ** crosses them', () => {
    const scoped = compilePolicy({
      defaultEffect: 'deny',
      reservedTypes: {},
      rules: [{ agents: ['a'], actions: ['*'], arns: [`${HEAD}cluster/prod/ns/*`], effect: 'allow' }],
    });
    expect(scoped.authorize('a', 'scale', parseArn(`${HEAD}cluster/prod/ns/payments`))).toEqual({ allowed: true });
    expect(scoped.authorize('a', 'scale', PROD_DEPLOYMENT).allowed).toBe(false);
    expect(scoped.authorize('ab', 'scale', parseArn(`${HEAD}cluster/prod/ns/payments`)).allowed).toBe(false);

    const anyRegion = compilePolicy({
      defaultEffect: 'deny',
      reservedTypes: {},
      rules: [{ agents: ['*'], actions: ['*'], arns: ['arn:aws:iam:*:*:role/*'], effect: 'allow' }],
    });
    expect(anyRegion.authorize('a', 'restart', parseArn('arn:aws:iam:::role/x'))).toEqual({ allowed: true });
    expect(anyRegion.authorize('a', 'restart', parseArn('arn:aws:iam:::role/x/session/y')).allowed).toBe(false);
  });

  it('treats regex characters in patterns literally', () => {
    const literal = compilePolicy({
      defaultEffect: 'deny',
      reservedTypes: {},
      rules: [{ agents: ['agent.1'], actions: ['restart'], arns: ['arn:aws:k8s:::pod/a.b'], effect: 'allow' }],
    });
    expect(literal.authorize('agent.1', 'restart', parseArn('arn:aws:k8s:::pod/a.b'))).toEqual({ allowed: true });
    expect(literal.authorize('agentx1', 'restart', parseArn('arn:aws:k8s:::pod/a.b')).allowed).toBe(false);
    expect(literal.authorize('agent.1', 'restart', parseArn('arn:aws:k8s:::pod/axb')).allowed).toBe(false);
  });

  it('lists every configuration problem at once', () => {
    expect(
      problemsOf({
        defaultEffect: 'permit',
        reservedTypes: { node: '', pod: 'a*' },
        rules: [
          { agents: [], actions: ['restart'], arns: ['**'], effect: 'allow' },
          { name: 'typo', agents: ['*'], actions: ['restrat', 're*'], arns: ['cluster/prod/**'], effect: 'deny' },
          { agents: ['*'], actions: ['*'], arns: ['**'], effect: 'block' },
          null,
        ],
      }),
    ).toEqual([
      `defaultEffect must be 'allow' or 'deny', got "permit"`,
      `reservedTypes['node'] must be one exact agent id, got ""`,
      `reservedTypes['pod'] must be one exact agent id, got "a*"`,
      "policy rule 0: agents must be a non-empty list (use ['*'] for any)",
      "policy rule 1 ('typo'): action 'restrat' matches no known action (restart, rollback, hotfix, deploy, scale, drain, terminate, cordon, evict)",
      "policy rule 1 ('typo'): ARN pattern 'cluster/prod/**' can never match; ARN patterns start with 'arn:' (or '*')",
      `policy rule 2: effect must be 'allow' or 'deny', got "block"`,
      'policy rule 3: must be an object',
    ]);
  });

  it('is a permanent CONFIG_INVALID error', () => {
    try {
      compilePolicy({ defaultEffect: 'deny', reservedTypes: {}, rules: 'nope' as unknown as [] });
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(InvalidPolicyError);
      expect((error as InvalidPolicyError).code).toBe('CONFIG_INVALID');
      expect((error as InvalidPolicyError).retryable).toBe(false);
      expect((error as InvalidPolicyError).message).toContain('rules must be an array');
    }
  });
});
