export { InvalidArnError, MAX_ARN_LENGTH, parseArn, tryParseArn } from './arn.ts';
export type { ArnParseResult, ParsedArn } from './arn.ts';
export {
  compileScopeRules,
  DEFAULT_SCOPE_RULES,
  InvalidScopeRulesError,
  WORKLOAD_TYPES,
  workloadOf,
} from './scope-rules.ts';
export type { ScopeResolution, ScopeResolver, ScopeRule } from './scope-rules.ts';
export { murmur2, partitionForKey, partitionForKeyBytes } from './partitioner.ts';
export { agentGlob, compilePolicy, InvalidPolicyError } from './policy.ts';
export type { Authorization, Policy, PolicyConfig, PolicyEffect, PolicyRule } from './policy.ts';
