import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { afterAll, describe, expect, it } from 'vitest';
import { ArbiterClient } from '../../src/agent-sdk/index.ts';
import { Serde } from '../../src/contract/serde.ts';
import { topicNames, valueSubject } from '../../src/contract/topics.ts';
import { untilAvailable } from '../../src/worker/index.ts';
import { removeInstallation } from '../support/cleanup.ts';
import { endpoints } from '../support/harness.ts';
import { forwardTo, stubRegistry } from '../support/registry-stub.ts';

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
      const prefix = newPrefix();
      const topics = topicNames(prefix);
      const serdes = Array.from({ length: 4 }, () => new Serde(endpoints.schemaRegistryUrl, topics, { callTimeoutMs: CALL_TIMEOUT_MS }));
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

  it('a registry that never answers a registration fails it once its budget is spent, as REGISTRY_UNAVAILABLE, after trying again', async () => {
    const registry = await stubRegistry((req, res) => {
      if (req.method === 'POST') return; // accepts, never answers
      unknownSubject(res);
    });
    try {
      const started = Date.now();
      const error = await new Serde(registry.url, topicNames('reg-silent'), { callTimeoutMs: 300, registerWithinMs: 1_500 }).register().catch((e: unknown) => e);
      const elapsed = Date.now() - started;
      expect(error).toMatchObject({ code: 'REGISTRY_UNAVAILABLE', retryable: true });
      // Calls of 300 ms with 100, 200, 400 ms between them: three fit in the 1.5 s budget.
      expect(registry.posts()).toBeGreaterThanOrEqual(3);
      // Gives up within its budget plus one call, far below a hang.
      expect(elapsed).toBeLessThan(1_500 + 300 + 1_000);
    } finally {
      await registry.close();
    }
  });

  it('a registration the registry does not answer in time is tried again and succeeds, with the schema id the registry gives', async () => {
    // A proxy in front of the real registry that leaves the first registration unanswered, as
    // Apicurio on a loaded machine did (the SDK's first submit then failed at once).
    let held = 0;
    const proxy = await stubRegistry(async (req, res, body) => {
      if (req.method === 'POST' && held++ === 0) return; // never answered
      await forwardTo(endpoints.schemaRegistryUrl, req, res, body);
    });
    const prefix = newPrefix();
    try {
      const viaProxy = new Serde(proxy.url, topicNames(prefix), { callTimeoutMs: 1_000, registerWithinMs: 20_000 });
      await viaProxy.register();
      expect(proxy.posts()).toBeGreaterThanOrEqual(3); // the held one, its retry, the outcome schema's
      const direct = new Serde(endpoints.schemaRegistryUrl, topicNames(prefix), { callTimeoutMs: CALL_TIMEOUT_MS });
      await direct.register();
      expect(viaProxy.schemaIds).toEqual(direct.schemaIds);
      expect(viaProxy.schemaIds.request).toBeGreaterThan(0);
    } finally {
      await proxy.close();
    }
  }, 60_000);

  it('a registry that refuses the schema fails at once, without trying again', async () => {
    const registry = await stubRegistry(refusingRegistrations(422, { error_code: 42201, message: 'Invalid schema' }));
    try {
      const error = await new Serde(registry.url, topicNames('reg-refused'), { callTimeoutMs: 1_000, registerWithinMs: 20_000 }).register().catch((e: unknown) => e);
      expect(error).toMatchObject({ code: 'REGISTRY_UNAVAILABLE' });
      expect(String((error as Error).message)).toMatch(/Invalid schema/);
      expect(registry.posts()).toBe(1);
    } finally {
      await registry.close();
    }
  });
});

describe('an agent (the SDK) registering through a registry that is briefly unavailable', () => {
  it('connects once a registration cut off mid-call is tried again', async () => {
    let cut = 0;
    const proxy = await stubRegistry(async (req, res, body) => {
      if (req.method === 'POST' && cut++ === 0) return res.destroy(); // the connection drops mid-registration
      await forwardTo(endpoints.schemaRegistryUrl, req, res, body);
    });
    const client = new ArbiterClient({ brokers: [endpoints.kafkaBrokers], schemaRegistryUrl: proxy.url, topicPrefix: newPrefix(), clientId: 'reg-agent' });
    try {
      await client.connect({ watchOutcomes: false });
      expect(proxy.posts()).toBeGreaterThanOrEqual(3);
    } finally {
      await client.close();
      await proxy.close();
    }
  }, 60_000);

  it('gives up after schemaRegistrationTimeoutMs with REGISTRY_UNAVAILABLE, having tried more than once', async () => {
    const registry = await stubRegistry(refusingRegistrations(503, { error_code: 50301, message: 'warming up' }));
    const client = new ArbiterClient({ brokers: [endpoints.kafkaBrokers], schemaRegistryUrl: registry.url, topicPrefix: 'reg-503', schemaRegistrationTimeoutMs: 1_000 });
    try {
      const started = Date.now();
      const error = await client.connect({ watchOutcomes: false }).catch((e: unknown) => e);
      expect(error).toMatchObject({ code: 'REGISTRY_UNAVAILABLE' });
      expect(registry.posts()).toBeGreaterThanOrEqual(2);
      // The default budget is 30 s: this is the option at work.
      expect(Date.now() - started).toBeLessThan(5_000);
    } finally {
      await registry.close();
    }
  });
});

function newPrefix(): string {
  const prefix = `reg-${randomUUID().slice(0, 8)}`;
  prefixes.push(prefix);
  return prefix;
}

/** A registry that knows no subject and answers every registration with this error. */
function refusingRegistrations(status: number, error: { error_code: number; message: string }) {
  return (req: IncomingMessage, res: ServerResponse) => {
    if (req.method !== 'POST') return unknownSubject(res);
    res.writeHead(status, { 'content-type': 'application/vnd.schemaregistry.v1+json' });
    res.end(JSON.stringify(error));
  };
}

/** The registry's answer to a subject's config before its first registration. */
function unknownSubject(res: ServerResponse): void {
  res.writeHead(404, { 'content-type': 'application/vnd.schemaregistry.v1+json' });
  res.end(JSON.stringify({ error_code: 40401, message: 'Subject not found' }));
}
