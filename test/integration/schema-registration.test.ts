import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { Serde } from '../../src/contract/serde.ts';
import { topicNames } from '../../src/contract/topics.ts';
import { endpoints } from '../support/harness.ts';

describe('schema registration when several workers start at once', () => {
  it('four workers registering fresh subjects concurrently all succeed, with one schema id and BACKWARD compatibility', async () => {
    for (let round = 0; round < 20; round++) {
      const topics = topicNames(`reg-${randomUUID().slice(0, 8)}`);
      const serdes = Array.from({ length: 4 }, () => new Serde(endpoints.schemaRegistryUrl, topics));
      await Promise.all(serdes.map((s) => s.register()));
      const ids = new Set(serdes.map((s) => s.schemaIds.request));
      expect(ids.size).toBe(1);
      const res = await fetch(`${endpoints.schemaRegistryUrl}/config/${encodeURIComponent(`${topics.requests}-value`)}`);
      const body = (await res.json()) as { compatibilityLevel?: string; compatibility?: string };
      expect((body.compatibilityLevel ?? body.compatibility)?.toUpperCase()).toBe('BACKWARD');
    }
  });
});
