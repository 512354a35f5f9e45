import { describe, expect, it } from 'vitest';
import {
  compileScopeRules,
  DEFAULT_SCOPE_RULES,
  InvalidArnError,
  InvalidScopeRulesError,
  parseArn,
  workloadOf,
} from '../../src/routing/index.ts';

const HEAD = 'arn:aws:k8s:us-east-1:123456789012:';
const DEPLOYMENT = `${HEAD}cluster/prod/ns/payments/deployment/api`;
const NODE = `${HEAD}cluster/prod/node/ip-10-0-1-2`;

function problemsOf(run: () => unknown): readonly string[] {
  try {
    run();
  } catch (error) {
    if (error instanceof InvalidScopeRulesError) return error.problems;
    throw error;
  }
  throw new Error('expected InvalidScopeRulesError');
}

describe('default scope rules', () => {
  const resolver = compileScopeRules([...DEFAULT_SCOPE_RULES]);

  it('gives every pod of a deployment the deployment scope, and the deployment itself too', () => {
    expect(resolver.scopeOf(`${DEPLOYMENT}/pod/api-7d9f`)).toBe(DEPLOYMENT);
    expect(resolver.scopeOf(`${DEPLOYMENT}/pod/api-x2k1`)).toBe(DEPLOYMENT);
    expect(resolver.scopeOf(`${DEPLOYMENT}/replicaset/api-7d/pod/api-7d-abc`)).toBe(DEPLOYMENT);
    expect(resolver.scopeOf(DEPLOYMENT)).toBe(DEPLOYMENT);
    expect(resolver.resolve(`${DEPLOYMENT}/pod/api-7d9f`)).toEqual({ scope: DEPLOYMENT, rule: 0 });
  });

  it('treats statefulsets and daemonsets as workloads', () => {
    const sts = `${HEAD}cluster/prod/ns/data/statefulset/pg`;
    const ds = `${HEAD}cluster/prod/ns/kube-system/daemonset/cni`;
    expect(resolver.scopeOf(`${sts}/pod/pg-0`)).toBe(sts);
    expect(resolver.scopeOf(`${ds}/pod/cni-abcde`)).toBe(ds);
  });

  it('keeps different deployments in different scopes', () => {
    expect(resolver.scopeOf(`${HEAD}cluster/prod/ns/payments/deployment/web/pod/web-1`)).not.toBe(
      resolver.scopeOf(`${DEPLOYMENT}/pod/api-1`),
    );
  });

  it('gives a node and anything under it the node scope', () => {
    expect(resolver.scopeOf(NODE)).toBe(NODE);
    expect(resolver.resolve(NODE)).toEqual({ scope: NODE, rule: 1 });
    expect(resolver.scopeOf(`${NODE}/disk/nvme0`)).toBe(NODE);
  });

  it('makes anything else its own scope', () => {
    const ns = `${HEAD}cluster/prod/ns/payments`;
    expect(resolver.resolve(ns)).toEqual({ scope: ns, rule: null });
    expect(resolver.scopeOf('arn:aws:iam:::role/remediator')).toBe('arn:aws:iam:::role/remediator');
  });

  it('looks at types, not names: a namespace named "deployment" is not a workload', () => {
    const ns = `${HEAD}cluster/prod/ns/deployment/service/api`;
    expect(resolver.scopeOf(ns)).toBe(ns);
    const node = `${HEAD}cluster/node/ns/x`;
    expect(resolver.scopeOf(node)).toBe(node);
  });

  it('accepts an already parsed ARN and refuses an invalid one', () => {
    expect(resolver.scopeOf(parseArn(`${DEPLOYMENT}/pod/a`))).toBe(DEPLOYMENT);
    expect(() => resolver.scopeOf(`${DEPLOYMENT}/pod/`)).toThrow(InvalidArnError);
  });

  it('agrees with workloadOf', () => {
    for (const arn of [`${DEPLOYMENT}/pod/a`, DEPLOYMENT, `${HEAD}cluster/prod/ns/data/statefulset/pg/pod/pg-0`]) {
      expect(workloadOf(arn)).toBe(resolver.scopeOf(arn));
    }
  });
});

describe('workloadOf', () => {
  it('returns the owning workload, or null', () => {
    expect(workloadOf(`${DEPLOYMENT}/pod/api-7d9f`)).toBe(DEPLOYMENT);
    expect(workloadOf(parseArn(DEPLOYMENT))).toBe(DEPLOYMENT);
    expect(workloadOf(NODE)).toBeNull();
    expect(workloadOf(`${HEAD}cluster/prod/ns/deployment`)).toBeNull();
    expect(workloadOf('arn:aws:k8s:::deployment/api/pod/p')).toBe('arn:aws:k8s:::deployment/api');
  });
});

describe('custom scope rules', () => {
  it('substitutes named and numbered groups, first matching rule wins', () => {
    const resolver = compileScopeRules([
      { match: 'arn:sim:fleet:[^:]*:[^:]*:service/(?<svc>[^/]+)/replica/.*', scope: 'arn:sim:fleet:::service/$<svc>' },
      { match: 'arn:sim:fleet:([^:]*):[^:]*:(host)/([^/]+)', scope: 'host-$3@$1 ($2)' },
      { match: 'arn:sim:.*', scope: 'never-reached-for-replicas' },
    ]);
    expect(resolver.resolve('arn:sim:fleet:local:000000000000:service/checkout/replica/r1')).toEqual({
      scope: 'arn:sim:fleet:::service/checkout',
      rule: 0,
    });
    expect(resolver.scopeOf('arn:sim:fleet:local:000000000000:host/h7')).toBe('host-h7@local (host)');
    expect(resolver.scopeOf('arn:sim:fleet:local:000000000000:queue/q')).toBe('never-reached-for-replicas');
  });

  it('anchors the pattern on the whole ARN', () => {
    const resolver = compileScopeRules([{ match: 'service/[^/]+', scope: 'svc' }]);
    const arn = 'arn:sim:fleet:::service/checkout';
    expect(resolver.scopeOf(arn)).toBe(arn);
  });

  it('cannot be un-anchored by an unbalanced parenthesis', () => {
    const problems = problemsOf(() => compileScopeRules([{ match: 'x)|(.*', scope: 'everything' }]));
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/^rule 0 \(match "x\)\|\(\.\*"\): invalid regular expression: /);
  });

  it('rejects every invalid rule at once, naming each', () => {
    const problems = problemsOf(() =>
      compileScopeRules([
        { match: 'arn:.*', scope: '$&' },
        { match: 'arn:(unclosed', scope: 'x' },
        { match: '', scope: 'x' },
        { match: 'arn:(a)(b)', scope: '$3' },
        { match: 'arn:(?<svc>.*)', scope: '$<service>' },
        { match: 'arn:.*', scope: '$<svc>' },
        { match: 'arn:.*', scope: 'cost: $5' },
        { match: '[z-a]', scope: 'x' },
        { match: 'arn:.*', scope: '' },
      ]),
    );
    expect(problems).toEqual([
      expect.stringMatching(/^rule 1 \(match "arn:\(unclosed"\): invalid regular expression: .*/),
      "rule 2: 'match' must be a non-empty string",
      'rule 3 (match "arn:(a)(b)"): scope "$3" references $3, but the pattern has 2 capture groups',
      'rule 4 (match "arn:(?<svc>.*)"): scope "$<service>" references group \'service\', which the pattern does not define (named groups: svc)',
      'rule 5 (match "arn:.*"): scope "$<svc>" references group \'svc\', which the pattern does not define (named groups: none)',
      'rule 6 (match "arn:.*"): scope "cost: $5" references $5, but the pattern has 0 capture groups',
      expect.stringMatching(/^rule 7 \(match "\[z-a\]"\): invalid regular expression: /),
      'rule 8 (match "arn:.*"): \'scope\' must be a non-empty template',
    ]);
  });

  it('rejects a stray $ and allows $$ for a literal one', () => {
    expect(problemsOf(() => compileScopeRules([{ match: 'arn:.*', scope: 'a$b' }]))).toEqual([
      `rule 0 (match "arn:.*"): scope "a$b" has a '$' at offset 1 that is not a reference; write '$$' for a literal '$'`,
    ]);
    expect(compileScopeRules([{ match: 'arn:.*', scope: 'cost$$' }]).scopeOf('arn:a:b:::t/n')).toBe('cost$');
  });

  it('is a CONFIG_INVALID error when a template comes out empty', () => {
    const resolver = compileScopeRules([{ match: 'arn:a:b:::t/(x)?.*', scope: '$1' }]);
    expect(resolver.scopeOf('arn:a:b:::t/x1')).toBe('x');
    expect(() => resolver.scopeOf('arn:a:b:::t/y')).toThrow(/scope rule 0 .* gave an empty scope/);
  });

  it('with no rules, every ARN is its own scope', () => {
    expect(compileScopeRules([]).scopeOf(`${DEPLOYMENT}/pod/a`)).toBe(`${DEPLOYMENT}/pod/a`);
  });
});
