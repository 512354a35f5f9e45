import type { RemediationRequest } from '../contract/request.ts';
import { REDACTED } from '../logging/index.ts';

/** The params each action's policy marks secret (config `actions.<name>.secretParams`), by action name. */
export type SecretParams = Readonly<Record<string, readonly string[] | undefined>>;

type ActionSettings = Readonly<Record<string, { readonly secretParams?: readonly string[] }>>;
/** A loaded config is frozen: its answer is worked out once, not for every intake chunk. */
const secretParamsByActions = new WeakMap<ActionSettings, SecretParams>();

/** The secret param names per action, from the loaded `actions` settings. */
export function secretParamsOf(actions: ActionSettings): SecretParams {
  let secret = secretParamsByActions.get(actions);
  if (!secret) {
    secret = Object.freeze(Object.fromEntries(Object.entries(actions).map(([action, settings]) => [action, settings.secretParams ?? []])));
    secretParamsByActions.set(actions, secret);
  }
  return secret;
}

/** Every name marked secret under any action: what the logger censors (it does not know which action a line is about). */
export function allSecretParamNames(secret: SecretParams): string[] {
  return [...new Set(Object.values(secret).flatMap((names) => names ?? []))].sort();
}

/** The params with the values of these names replaced by "[redacted]"; the same object when none is present. */
export function redactParams(params: Readonly<Record<string, string>>, names: readonly string[] | undefined): Record<string, string> {
  if (!names?.length || !names.some((name) => Object.hasOwn(params, name))) return params as Record<string, string>;
  return Object.fromEntries(Object.entries(params).map(([key, value]) => [key, names.includes(key) ? REDACTED : value]));
}

/**
 * The request as the audit trail keeps it: its action's secret params redacted. Only for what is
 * kept as a record (arbiter.requests.params, reports); the executor and the working state the
 * worker recovers from (request_state.request) need the values as sent.
 */
export function redactSecretParams<T extends Pick<RemediationRequest, 'action' | 'params'>>(request: T, secret: SecretParams): T {
  const params = redactParams(request.params, secret[request.action]);
  return params === request.params ? request : { ...request, params };
}
