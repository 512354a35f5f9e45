import { Partitioners } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { keyedPartitioner } from '../../src/contract/kafka-client.ts';

const metadata = (n: number) => Array.from({ length: n }, (_, partitionId) => ({ partitionId, leader: 0, replicas: [0], isr: [0], partitionErrorCode: 0 }));

describe('keyedPartitioner (memoised murmur2)', () => {
  it('puts every key where kafkajs’ DefaultPartitioner (Java’s murmur2) does, asked once or many times, for any partition count', () => {
    const memo = keyedPartitioner();
    const reference = Partitioners.DefaultPartitioner();
    for (const partitions of [1, 3, 12, 50]) {
      for (let i = 0; i < 300; i++) {
        const message = { key: `arn:aws:eks:us-east-1:123:deployment/prod/api-${i}`, value: null };
        const expected = reference({ topic: 't', partitionMetadata: metadata(partitions), message });
        for (let again = 0; again < 2; again++) expect(memo({ topic: 't', partitionMetadata: metadata(partitions), message })).toBe(expected);
      }
    }
  });

  it('keeps topics apart, and a topic whose partition count changes gets the new count’s partitions', () => {
    const memo = keyedPartitioner();
    const reference = Partitioners.DefaultPartitioner();
    for (let i = 0; i < 200; i++) {
      const message = { key: `scope-${i}`, value: null };
      for (const [topic, partitions] of [['a', 12], ['b', 5], ['a', 12], ['b', 7], ['a', 3]] as const) {
        expect(memo({ topic, partitionMetadata: metadata(partitions), message })).toBe(reference({ topic, partitionMetadata: metadata(partitions), message }));
      }
    }
  });

  it('keeps an explicit partition and leaves keyless records to the default partitioner', () => {
    const memo = keyedPartitioner();
    expect(memo({ topic: 't', partitionMetadata: metadata(12), message: { key: 'scope', value: null, partition: 7 } })).toBe(7);
    const p = memo({ topic: 't', partitionMetadata: metadata(12), message: { key: null, value: null } });
    expect(p).toBeGreaterThanOrEqual(0);
    expect(p).toBeLessThan(12);
  });
});
