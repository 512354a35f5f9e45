import { randomUUID } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { Serde } from '../../src/contract/serde.ts';
import { topicNames, valueSubject } from '../../src/contract/topics.ts';
import { untilAvailable } from '../../src/worker/index.ts';
import { removeInstallation } from '../support/cleanup.ts';
import { endpoints } from '../support/harness.ts';

/** Every registry call here has its own timeout: a hung registry fails the test at once, naming the call. */
const CALL_TIMEOUT_MS = 10_000;

/** The installations (topic prefixes) whose subjects this file registered; only subjects, no topics. */
const prefixes: string[] = [];
afterAll(() => removeInstallation(...prefixes));

describe('schema registration when several workers start at once', () => {
  // Why 10 rounds: the race between workers configuring a fresh subject shows up in only some
  // rounds (it depends on which PUT lands first); one round would pass by luck.
  it('four workers registering fresh subjects concurrently all succeed, with one schema id and BACKWARD compatibility', async () => {
    for (let round = 0; round < 10; round++) {
      const prefix = `reg-${randomUUID().slice(0, 8)}`;
      prefixes.push(prefix);
      const topics = topicNames(prefix);
      const serdes = Array.from({ length: 4 }, () => new Serde(endpoints.schemaRegistryUrl, topics, CALL_TIMEOUT_MS));
      // As a worker registers at start-up: a registry slow to answer (REGISTRY_UNAVAILABLE: a call
      // timed out while a loaded CI machine ran every test file at once) is waited for. What this
      // test is about, the race between workers configuring a fresh subject, must still end well.
      const quiet = { warn: () => undefined };
      await Promise.all(serdes.map((s) => untilAvailable('the schema registry', () => s.register(), quiet)));
      const ids = new Set(serdes.map((s) => s.schemaIds.request));
      expect(ids.size).toBe(1);
      const res = await fetch(`${endpoints.schemaRegistryUrl}/config/${encodeURIComponent(valueSubject(topics.requests))}`, {
        signal: AbortSignal.timeout(CALL_TIMEOUT_MS),
      });
      const body = (await res.json()) as { compatibilityLevel?: string; compatibility?: string };
      expect((body.compatibilityLevel ?? body.compatibility)?.toUpperCase()).toBe('BACKWARD');
    }
  }, 180_000);

  it('a registry that never answers fails the call within its timeout, as REGISTRY_UNAVAILABLE', async () => {
    const { createServer } = await import('node:http');
    const silent = createServer(() => undefined); // accepts, never answers
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const port = (silent.address() as { port: number }).port;
    try {
      const started = Date.now();
      const error = await new Serde(`http://127.0.0.1:${port}`, topicNames('reg-silent'), 300).register().catch((e: unknown) => e);
      expect(error).toMatchObject({ code: 'REGISTRY_UNAVAILABLE', retryable: true });
      // Four tries (the client's 3 retries) of 300 ms each, plus their backoff: far below a hang.
      expect(Date.now() - started).toBeLessThan(8_000);
    } finally {
      silent.closeAllConnections();
      silent.close();
    }
  });
});
