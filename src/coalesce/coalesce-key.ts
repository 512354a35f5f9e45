import { BoundedCache } from '../contract/bounded-cache.ts';
import { paramCount } from '../contract/request.ts';

/**
 * Two requests are duplicates when they ask the same action on the same resource with the same
 * parameters. Parameter order never matters; values are compared exactly.
 */
export function coalesceKey(resourceArn: string, action: string, params: Record<string, string>): string {
  // Most requests have no params: their key is kept per resource (a storm repeats each
  // ~100 times), and made without sorting and mapping an empty list.
  if (paramCount(params) === 0) return keyWithoutParams(resourceArn, action);
  const canonical = Object.keys(params)
    .sort()
    .map((k) => [k, params[k]]);
  // JSON, not a separator character: the key is stored in Postgres text, which refuses NUL.
  return JSON.stringify([resourceArn, action, canonical]);
}

const NO_PARAMS: readonly never[] = Object.freeze([]);

/**
 * The key of a request without params, by ARN: the one for the last action asked of that resource
 * (a storm asks one action of a resource over and over; another action is keyed afresh).
 */
const withoutParams = new BoundedCache<string, { action: string; key: string }>(20_000);

function keyWithoutParams(resourceArn: string, action: string): string {
  const kept = withoutParams.get(resourceArn);
  if (kept?.action === action) return kept.key;
  return withoutParams.set(resourceArn, { action, key: JSON.stringify([resourceArn, action, NO_PARAMS]) }).key;
}
