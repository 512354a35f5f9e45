/**
 * Two requests are duplicates when they ask the same action on the same resource with the same
 * parameters. Parameter order never matters; values are compared exactly.
 */
export function coalesceKey(resourceArn: string, action: string, params: Record<string, string>): string {
  // Most requests have no params: their key is kept per resource and action (a storm repeats each
  // ~100 times), and made without sorting and mapping an empty list.
  if (isEmpty(params)) return keyWithoutParams(resourceArn, action);
  const canonical = Object.keys(params)
    .sort()
    .map((k) => [k, params[k]]);
  // JSON, not a separator character: the key is stored in Postgres text, which refuses NUL.
  return JSON.stringify([resourceArn, action, canonical]);
}

const NO_PARAMS: readonly never[] = Object.freeze([]);

/** Keys of requests without params, by action and ARN. Bounded: cleared when full. */
const withoutParams = new Map<string, Map<string, string>>();
let keptWithoutParams = 0;
const KEPT_MAX = 20_000;

function keyWithoutParams(resourceArn: string, action: string): string {
  let byArn = withoutParams.get(action);
  if (!byArn) withoutParams.set(action, (byArn = new Map()));
  let key = byArn.get(resourceArn);
  if (key === undefined) {
    key = JSON.stringify([resourceArn, action, NO_PARAMS]);
    if (keptWithoutParams >= KEPT_MAX) {
      withoutParams.clear();
      keptWithoutParams = 0;
      withoutParams.set(action, (byArn = new Map()));
    }
    byArn.set(resourceArn, key);
    keptWithoutParams++;
  }
  return key;
}

function isEmpty(params: Record<string, string>): boolean {
  for (const _ in params) return false;
  return true;
}
