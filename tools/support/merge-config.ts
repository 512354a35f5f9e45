/** A worker config (or a part of one) as written to a --config file. */
export type ConfigObject = Record<string, unknown>;

function isObject(value: unknown): value is ConfigObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * `over` laid over `base`, objects merged key by key and everything else (arrays included)
 * replaced, as the worker layers its own config sources.
 */
export function mergeConfig(base: ConfigObject, over: ConfigObject): ConfigObject {
  const out = { ...base };
  for (const [key, value] of Object.entries(over)) out[key] = isObject(value) && isObject(out[key]) ? mergeConfig(out[key], value) : value;
  return out;
}
