import { createRequire } from 'node:module';
import { Partitioners, type PartitionerArgs } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { murmur2, partitionForKey, partitionForKeyBytes } from '../../src/routing/index.ts';

const require = createRequire(import.meta.url);
const kafkajsMurmur2 = require('kafkajs/src/producer/partitioners/default/murmur2.js') as (key: Buffer | string) => number;

// Apache Kafka, clients/src/test/java/org/apache/kafka/common/utils/UtilsTest.java, testMurmur2.
const JAVA_VECTORS: [string, number][] = [
  ['21', -973932308],
  ['foobar', -790332482],
  ['a-little-bit-long-string', -985981536],
  ['a-little-bit-longer-string', -1486304829],
  ['lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8', -58897971],
  ['abc', 479470107],
];

/** Deterministic so a failure can be replayed; mulberry32. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// Multi-byte characters so every length mod 4 and every byte value shows up in the tail.
const ALPHABET = [...'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789:/-_.@é€漢\u{1F525}'];

function randomKeys(count: number, seed: number): string[] {
  const next = random(seed);
  const keys: string[] = [''];
  while (keys.length < count) {
    const length = Math.floor(next() * 80);
    let key = '';
    for (let i = 0; i < length; i++) key += ALPHABET[Math.floor(next() * ALPHABET.length)];
    keys.push(key);
  }
  return keys;
}

describe('murmur2', () => {
  it.each(JAVA_VECTORS)('matches Java for %j', (input, expected) => {
    expect(murmur2(Buffer.from(input, 'utf8'))).toBe(expected);
  });

  it('hashes the empty input like Java', () => {
    expect(murmur2(Buffer.alloc(0))).toBe(275646681);
  });

  it('matches kafkajs on random bytes, including high bytes', () => {
    const next = random(7);
    for (let n = 0; n < 2000; n++) {
      const bytes = Buffer.alloc(Math.floor(next() * 40));
      for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(next() * 256);
      expect(murmur2(bytes)).toBe(kafkajsMurmur2(bytes));
    }
  });

  it('accepts a plain Uint8Array', () => {
    expect(murmur2(new TextEncoder().encode('foobar'))).toBe(-790332482);
  });
});

describe('partitionForKey', () => {
  it('takes the positive part of the hash, not its absolute value', () => {
    // murmur2('foobar') is negative; Math.abs would give 32, the Java mask gives 16.
    expect(partitionForKey('foobar', 50)).toBe(16);
    expect(partitionForKey('21', 1)).toBe(0);
  });

  it('equals partitionForKeyBytes on the UTF-8 bytes', () => {
    const key = 'arn:aws:k8s:::deployment/api';
    expect(partitionForKey(key, 12)).toBe(partitionForKeyBytes(Buffer.from(key), 12));
  });

  it.each([1, 3, 12, 50])('agrees with kafkajs DefaultPartitioner on 10,000 random keys over %i partitions', (count) => {
    const partitioner = Partitioners.DefaultPartitioner();
    const partitionMetadata = Array.from({ length: count }, (_, partitionId) => ({ partitionId, leader: 0 }));
    const seen = new Set<number>();
    for (const key of randomKeys(10_000, count)) {
      const expected = partitioner({ topic: 'requests', partitionMetadata, message: { key, value: null } } as PartitionerArgs);
      const actual = partitionForKey(key, count);
      if (actual !== expected) expect({ key, actual }).toEqual({ key, actual: expected });
      seen.add(actual);
    }
    expect(seen.size).toBe(count);
  });

  it('refuses a partition count that is not a positive integer', () => {
    for (const count of [0, -1, 1.5, Number.NaN]) {
      expect(() => partitionForKey('k', count)).toThrow(RangeError);
    }
  });
});
