import { BoundedCache } from '../contract/bounded-cache.ts';

/**
 * The Java client's keyed partitioning: `toPositive(Utils.murmur2(keyBytes)) % numPartitions`
 * (DefaultPartitioner before Kafka 3.3, BuiltInPartitioner.partitionForKey since; the
 * sticky behaviour of newer clients only applies to records without a key). kafkajs's
 * DefaultPartitioner computes the same thing, so the worker can tell, for any record,
 * which partition a Java or kafkajs producer would have put it on.
 *
 * librdkafka and the clients built on it (confluent-kafka-python/-go/.NET) default to
 * `consistent_random`, a CRC32 of the key, and place the same key elsewhere unless
 * configured with `partitioner=murmur2_random`. Since the design promises that any
 * Confluent-compatible client may produce a request, the worker re-routes a record whose
 * key (the scope) hashes to a different partition than the one it arrived on; otherwise two
 * consumers could both believe they own one scope.
 */

const SEED = 0x9747b28c;
// Mixing constants of MurmurHash2.
const M = 0x5bd1e995;
const R = 24;

/**
 * Kafka's `Utils.murmur2`, returning the same signed 32-bit value as Java. Math.imul and the
 * `>>>`/`^` operators reproduce Java's wrapping int arithmetic exactly.
 */
export function murmur2(data: Uint8Array): number {
  const length = data.length;
  let h = SEED ^ length;
  const whole = length & ~3;

  for (let i = 0; i < whole; i += 4) {
    let k = data[i]! | (data[i + 1]! << 8) | (data[i + 2]! << 16) | (data[i + 3]! << 24);
    k = Math.imul(k, M);
    k ^= k >>> R;
    k = Math.imul(k, M);
    h = Math.imul(h, M);
    h ^= k;
  }

  const tail = length & 3;
  if (tail >= 3) h ^= data[whole + 2]! << 16;
  if (tail >= 2) h ^= data[whole + 1]! << 8;
  if (tail >= 1) {
    h ^= data[whole]!;
    h = Math.imul(h, M);
  }

  h ^= h >>> 13;
  h = Math.imul(h, M);
  h ^= h >>> 15;
  return h | 0;
}

/** The partition a Java or kafkajs producer picks for these key bytes. */
export function partitionForKeyBytes(key: Uint8Array, numPartitions: number): number {
  if (!Number.isInteger(numPartitions) || numPartitions < 1) {
    throw new RangeError(`numPartitions must be a positive integer, got ${numPartitions}`);
  }
  return (murmur2(key) & 0x7fffffff) % numPartitions;
}

/**
 * The partition for a string key, encoded as UTF-8 like Java's StringSerializer and kafkajs.
 * (Lone surrogates would encode differently in Java; scopes are validated ASCII ARNs.)
 */
export function partitionForKey(key: string, numPartitions: number): number {
  // Every request's scope is checked against its partition, and a storm repeats each scope many
  // times: the answer is kept per scope (per partition count).
  let known = partitionsByCount.get(numPartitions);
  if (!known) partitionsByCount.set(numPartitions, (known = new BoundedCache(100_000)));
  return known.get(key) ?? known.set(key, partitionForKeyBytes(Buffer.from(key, 'utf8'), numPartitions));
}

const partitionsByCount = new Map<number, BoundedCache<string, number>>();
