import { ACTIONS } from '../contract/actions.ts';
import { ArbiterError } from '../contract/errors.ts';
import type { ParsedArn } from './arn.ts';

/**
 * The agent policy: which agent may ask for which action on which resources.
 *
 * Patterns: in `agents` and `actions`, `*` matches any run of characters. In `arns`,
 * `*` matches within one ARN field or path segment (anything but ':' and '/'), and `**`
 * matches anything, so `arn:aws:k8s:*:*:cluster/prod/**` covers every resource in the
 * prod cluster of any region and account, but `.../ns/*` covers only namespaces themselves.
 */
export type PolicyEffect = 'allow' | 'deny';

export interface PolicyRule {
  /** Shown in reasons next to the rule's index. */
  name?: string;
  agents: string[];
  actions: string[];
  arns: string[];
  effect: PolicyEffect;
}

export interface PolicyConfig {
  rules: PolicyRule[];
  /** Single writer by resource type: resource type → the one agent id allowed to act on it. */
  reservedTypes: Record<string, string>;
  defaultEffect: PolicyEffect;
}

export type Authorization = { allowed: true } | { allowed: false; reason: string };

/** Every allowed request gets this one (a storm's million of them made a million objects). */
const ALLOWED: Authorization = Object.freeze({ allowed: true });

export interface Policy {
  authorize(agentId: string, action: string, arn: ParsedArn): Authorization;
}

export class InvalidPolicyError extends ArbiterError {
  readonly problems: readonly string[];

  constructor(problems: readonly string[]) {
    super('CONFIG_INVALID', `invalid agent policy:\n  - ${problems.join('\n  - ')}`);
    this.name = 'InvalidPolicyError';
    this.problems = problems;
  }
}

interface CompiledRule {
  readonly label: string;
  readonly effect: PolicyEffect;
  readonly agents: RegExp;
  readonly actions: RegExp;
  readonly arns: RegExp;
}

function firstMatch(rules: readonly CompiledRule[], agentId: string, action: string, arn: string): CompiledRule | undefined {
  for (const rule of rules) if (rule.agents.test(agentId) && rule.actions.test(action) && rule.arns.test(arn)) return rule;
  return undefined;
}

export function compilePolicy(config: PolicyConfig): Policy {
  const problems: string[] = [];
  if (config === null || typeof config !== 'object') throw new InvalidPolicyError(['policy must be an object']);

  if (config.defaultEffect !== 'allow' && config.defaultEffect !== 'deny') {
    problems.push(`defaultEffect must be 'allow' or 'deny', got ${JSON.stringify(config.defaultEffect)}`);
  }

  const reserved = new Map<string, string>();
  const reservedTypes: unknown = config.reservedTypes;
  if (reservedTypes === null || typeof reservedTypes !== 'object' || Array.isArray(reservedTypes)) {
    problems.push('reservedTypes must be an object mapping resource type to writer agent id');
  } else {
    for (const [type, agent] of Object.entries(reservedTypes)) {
      if (type === '') problems.push('reservedTypes has an empty resource type');
      if (typeof agent !== 'string' || agent === '' || agent.includes('*')) {
        problems.push(`reservedTypes['${type}'] must be one exact agent id, got ${JSON.stringify(agent)}`);
      } else {
        reserved.set(type, agent);
      }
    }
  }

  const compiled: CompiledRule[] = [];
  if (!Array.isArray(config.rules)) {
    problems.push('rules must be an array');
  } else {
    for (const [index, rule] of config.rules.entries()) {
      const result = compileRule(index, rule);
      if (Array.isArray(result)) problems.push(...result);
      else compiled.push(result);
    }
  }
  if (problems.length > 0) throw new InvalidPolicyError(problems);

  const denyRules = compiled.filter((rule) => rule.effect === 'deny');
  const allowRules = compiled.filter((rule) => rule.effect === 'allow');
  const defaultEffect = config.defaultEffect;

  return {
    authorize(agentId, action, arn) {
      // Checked before the rules: a reservation is what keeps two writers apart, so no
      // allow rule, however broad, can hand the type to another agent.
      const writer = reserved.get(arn.resourceType);
      if (writer !== undefined && writer !== agentId) {
        const reason = `resource type '${arn.resourceType}' is reserved to writer agent '${writer}'`;
        return { allowed: false, reason };
      }
      const deny = firstMatch(denyRules, agentId, action, arn.text);
      if (deny) {
        return { allowed: false, reason: `${deny.label} denies agent '${agentId}' action '${action}' on ${arn.text}` };
      }
      if (firstMatch(allowRules, agentId, action, arn.text) || defaultEffect === 'allow') return ALLOWED;
      return {
        allowed: false,
        reason: `no policy rule allows agent '${agentId}' action '${action}' on ${arn.text}, and the default effect is deny`,
      };
    },
  };
}

function compileRule(index: number, rule: PolicyRule): CompiledRule | string[] {
  if (rule === null || typeof rule !== 'object') return [`policy rule ${index}: must be an object`];
  const named = typeof rule.name === 'string' && rule.name !== '';
  const label = named ? `policy rule ${index} ('${rule.name}')` : `policy rule ${index}`;
  const problems: string[] = [];

  if (rule.effect !== 'allow' && rule.effect !== 'deny') {
    problems.push(`${label}: effect must be 'allow' or 'deny', got ${JSON.stringify(rule.effect)}`);
  }
  const agents = patternList(label, 'agents', rule.agents, problems);
  const actions = patternList(label, 'actions', rule.actions, problems);
  const arns = patternList(label, 'arns', rule.arns, problems);

  // A misspelt action or an ARN pattern that cannot match would make a deny rule protect
  // nothing, silently; refuse both.
  for (const action of actions) {
    const regex = plainGlob(action);
    if (!ACTIONS.some((known) => regex.test(known))) {
      problems.push(`${label}: action '${action}' matches no known action (${ACTIONS.join(', ')})`);
    }
  }
  for (const pattern of arns) {
    if (!pattern.startsWith('arn:') && !pattern.startsWith('*')) {
      problems.push(`${label}: ARN pattern '${pattern}' can never match; ARN patterns start with 'arn:' (or '*')`);
    }
  }
  if (problems.length > 0) return problems;

  return {
    label,
    effect: rule.effect,
    agents: anyOf(agents.map(plainGlobSource)),
    actions: anyOf(actions.map(plainGlobSource)),
    arns: anyOf(arns.map(arnGlobSource)),
  };
}

function patternList(label: string, field: string, value: unknown, problems: string[]): string[] {
  if (!Array.isArray(value) || value.length === 0) {
    problems.push(`${label}: ${field} must be a non-empty list (use ['*'] for any)`);
    return [];
  }
  const patterns: string[] = [];
  for (const [i, item] of value.entries()) {
    if (typeof item !== 'string' || item === '') problems.push(`${label}: ${field}[${i}] must be a non-empty string`);
    else patterns.push(item);
  }
  return patterns;
}

function escapeRegex(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}

function plainGlobSource(pattern: string): string {
  return pattern.split('*').map(escapeRegex).join('.*');
}

/** An agent-name pattern (`*` matches anything), as the policy's `agents` use them. */
export function agentGlob(pattern: string): RegExp {
  return plainGlob(pattern);
}

function plainGlob(pattern: string): RegExp {
  return new RegExp(`^(?:${plainGlobSource(pattern)})$`);
}

function arnGlobSource(pattern: string): string {
  return pattern
    .split('**')
    .map((part) => part.split('*').map(escapeRegex).join('[^:/]*'))
    .join('.*');
}

function anyOf(sources: string[]): RegExp {
  return new RegExp(`^(?:${sources.join('|')})$`);
}
