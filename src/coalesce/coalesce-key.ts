/**
 * Two requests are duplicates when they ask the same action on the same resource with the same
 * parameters. Parameter order never matters; values are compared exactly.
 */
export function coalesceKey(resourceArn: string, action: string, params: Record<string, string>): string {
  // Most requests have no params: the same key without sorting and mapping an empty list.
  if (isEmpty(params)) return JSON.stringify([resourceArn, action, NO_PARAMS]);
  const canonical = Object.keys(params)
    .sort()
    .map((k) => [k, params[k]]);
  // JSON, not a separator character: the key is stored in Postgres text, which refuses NUL.
  return JSON.stringify([resourceArn, action, canonical]);
}

const NO_PARAMS: readonly never[] = Object.freeze([]);

function isEmpty(params: Record<string, string>): boolean {
  for (const _ in params) return false;
  return true;
}
