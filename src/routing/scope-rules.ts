import { ArbiterError } from '../contract/errors.ts';
import { parseArn, type ParsedArn } from './arn.ts';

/**
 * A scope is the unit of single-writer ownership and the Kafka key of every request for
 * it, so everything whose effects interact must resolve to the same scope. A rule maps
 * ARNs to a scope: `match` is a regular expression tested against the whole ARN text
 * (anchored for you), `scope` a replacement template (`$1`, `$<name>`, `$&`, `$$`).
 */
export interface ScopeRule {
  match: string;
  scope: string;
}

export interface ScopeResolution {
  scope: string;
  /** Index of the rule that matched; null when no rule did and the ARN is its own scope. */
  rule: number | null;
}

export interface ScopeResolver {
  readonly rules: readonly Readonly<ScopeRule>[];
  /** Throws InvalidArnError when given text that is not a valid ARN. */
  scopeOf(arn: string | ParsedArn): string;
  /** As scopeOf, also telling which rule decided; for the audit trail. */
  resolve(arn: string | ParsedArn): ScopeResolution;
}

export class InvalidScopeRulesError extends ArbiterError {
  readonly problems: readonly string[];

  constructor(problems: readonly string[]) {
    super('CONFIG_INVALID', `invalid scope rules:\n  - ${problems.join('\n  - ')}`);
    this.name = 'InvalidScopeRulesError';
    this.problems = problems;
  }
}

/** Resource types whose replicas share capacity; restarts and drains inside one are checked against one budget. */
export const WORKLOAD_TYPES = ['deployment', 'statefulset', 'daemonset'] as const;

// The prefix consumes whole `type/name` pairs so a resource *named* `deployment` is never
// mistaken for a workload; the lazy repetition picks the outermost workload.
const ARN_HEAD = 'arn:[^:]*:[^:]*:[^:]*:[^:]*:(?:[^/]+/[^/]+/)*?';

/**
 * (a) anything under a workload → the workload's ARN, so a deployment and all its pods
 * share one scope; (b) a node and anything under it → the node's ARN, so a drain and the
 * terminate that follows are ordered by one owner; (c) everything else is its own scope,
 * which is the resolver's fallback rather than a rule, so rules appended after these
 * still get their turn.
 */
export const DEFAULT_SCOPE_RULES: readonly Readonly<ScopeRule>[] = Object.freeze([
  Object.freeze({
    match: `(?<workload>${ARN_HEAD}(?:${WORKLOAD_TYPES.join('|')})/[^/]+)(?:/.*)?`,
    scope: '$<workload>',
  }),
  Object.freeze({ match: `(?<node>${ARN_HEAD}node/[^/]+)(?:/.*)?`, scope: '$<node>' }),
]);

interface CompiledRule {
  readonly index: number;
  readonly regex: RegExp;
  readonly scope: string;
}

export function compileScopeRules(rules: readonly ScopeRule[]): ScopeResolver {
  if (!Array.isArray(rules)) throw new InvalidScopeRulesError([`rules must be an array, got ${typeof rules}`]);
  const problems: string[] = [];
  const compiled: CompiledRule[] = [];
  for (const [index, rule] of rules.entries()) {
    const result = compileRule(index, rule);
    if (typeof result === 'string') problems.push(result);
    else compiled.push(result);
  }
  if (problems.length > 0) throw new InvalidScopeRulesError(problems);

  const frozenRules = Object.freeze(rules.map((rule) => Object.freeze({ match: rule.match, scope: rule.scope })));

  // A storm repeats each ARN ~100 times, and the rules are regular expressions with backtracking:
  // a resolution is kept per parsed ARN, which tryParseArn keeps (frozen) per ARN text.
  const resolved = new WeakMap<ParsedArn, ScopeResolution>();

  function resolve(arn: string | ParsedArn): ScopeResolution {
    const parsed = typeof arn === 'string' ? parseArn(arn) : arn;
    let resolution = resolved.get(parsed);
    if (!resolution) {
      resolution = Object.freeze(resolveText(parsed.text));
      resolved.set(parsed, resolution);
    }
    return resolution;
  }

  function resolveText(text: string): ScopeResolution {
    for (const rule of compiled) {
      if (!rule.regex.test(text)) continue;
      const scope = text.replace(rule.regex, rule.scope);
      // Optional groups can make a template come out empty; an empty Kafka key would
      // silently pool unrelated resources, so this is a configuration error, not a scope.
      if (scope === '') {
        throw new ArbiterError(
          'CONFIG_INVALID',
          `scope rule ${rule.index} (match ${JSON.stringify(frozenRules[rule.index]!.match)}) ` +
            `gave an empty scope for ${text}`,
        );
      }
      return { scope, rule: rule.index };
    }
    return { scope: text, rule: null };
  }

  return {
    rules: frozenRules,
    resolve,
    scopeOf: (arn) => resolve(arn).scope,
  };
}

/** The ARN of the workload that owns `arn` (itself if it is one), or null; disruption budgets are per workload. */
export function workloadOf(arn: string | ParsedArn): string | null {
  const parsed = typeof arn === 'string' ? parseArn(arn) : arn;
  const types: readonly string[] = WORKLOAD_TYPES;
  for (let i = 0; i + 1 < parsed.segments.length; i += 2) {
    if (types.includes(parsed.segments[i]!)) {
      const head = `arn:${parsed.partition}:${parsed.service}:${parsed.region}:${parsed.account}:`;
      return head + parsed.segments.slice(0, i + 2).join('/');
    }
  }
  return null;
}

function compileRule(index: number, rule: ScopeRule): CompiledRule | string {
  const label = `rule ${index}`;
  if (rule === null || typeof rule !== 'object') return `${label}: must be an object with 'match' and 'scope'`;
  const { match, scope } = rule;
  if (typeof match !== 'string' || match === '') return `${label}: 'match' must be a non-empty string`;
  const where = `${label} (match ${JSON.stringify(match)})`;
  if (typeof scope !== 'string' || scope === '') return `${where}: 'scope' must be a non-empty template`;

  let regex: RegExp;
  let probe: RegExpExecArray;
  try {
    // Compiled alone first: an unbalanced ')' could otherwise close our anchoring group
    // early (`a)|(b`) and leave the rest of the pattern unanchored.
    new RegExp(match);
    regex = new RegExp(`^(?:${match})$`);
    // The empty alternative always matches, which reveals the group count and names.
    probe = new RegExp(`(?:${match})|`).exec('')!;
  } catch (error) {
    return `${where}: invalid regular expression: ${(error as Error).message}`;
  }
  const templateProblem = checkTemplate(scope, probe.length - 1, Object.keys(probe.groups ?? {}));
  if (templateProblem) return `${where}: scope ${JSON.stringify(scope)} ${templateProblem}`;
  return { index, regex, scope };
}

/**
 * JavaScript leaves a reference to a missing group in the output as literal text (or, for
 * an unknown name, as nothing), which would quietly produce a wrong scope; catch it here.
 */
function checkTemplate(template: string, groupCount: number, groupNames: readonly string[]): string | undefined {
  for (let i = 0; i < template.length; i++) {
    if (template[i] !== '$') continue;
    const next = template[i + 1];
    if (next === '$' || next === '&' || next === '`' || next === "'") {
      i++;
      continue;
    }
    if (next === '<') {
      const end = template.indexOf('>', i + 2);
      if (end === -1) return `has an unterminated '$<' at offset ${i}`;
      const name = template.slice(i + 2, end);
      if (!groupNames.includes(name)) {
        const known = groupNames.length > 0 ? groupNames.join(', ') : 'none';
        return `references group '${name}', which the pattern does not define (named groups: ${known})`;
      }
      i = end;
      continue;
    }
    if (next !== undefined && next >= '0' && next <= '9') {
      const twoDigits = template.slice(i + 1, i + 3);
      if (/^\d\d$/.test(twoDigits) && Number(twoDigits) >= 1 && Number(twoDigits) <= groupCount) {
        i += 2;
        continue;
      }
      const oneDigit = Number(next);
      if (oneDigit >= 1 && oneDigit <= groupCount) {
        i += 1;
        continue;
      }
      return `references $${next}, but the pattern has ${groupCount} capture group${groupCount === 1 ? '' : 's'}`;
    }
    return `has a '$' at offset ${i} that is not a reference; write '$$' for a literal '$'`;
  }
  return undefined;
}
