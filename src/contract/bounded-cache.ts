/**
 * Values derived from their key, remembered up to `max` keys: when full, everything is forgotten
 * at once (cheaper per call than an LRU, and a storm's working set refills it within moments).
 * For the worker's per-record caches: parsed ARNs, scope partitions, outcome partitions, coalesce
 * keys. `get(key) ?? set(key, derive(key))` computes a value once per key while it is remembered.
 */
export class BoundedCache<K, V> {
  private readonly entries = new Map<K, V>();

  constructor(private readonly max: number) {}

  get(key: K): V | undefined {
    return this.entries.get(key);
  }

  /** Remembers `value` for `key` (forgetting every other key first when full) and returns it. */
  set(key: K, value: V): V {
    if (this.entries.size >= this.max) this.entries.clear();
    this.entries.set(key, value);
    return value;
  }
}
