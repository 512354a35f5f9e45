import { afterEach, describe, expect, it, vi } from 'vitest';
import { ArbiterError } from '../../src/contract/errors.ts';
import { stackStatus, stackUp } from '../../tools/stack/index.ts';

describe('local stack', () => {
  afterEach(() => {
    vi.unstubAllEnvs();
  });

  it('reuses the running services instead of starting them', async () => {
    const endpoints = await stackUp();
    expect(endpoints.started).toEqual([]);

    const status = await stackStatus();
    expect(status.map(({ service, reachable }) => ({ service, reachable }))).toEqual([
      { service: 'kafka', reachable: true },
      { service: 'registry', reachable: true },
      { service: 'postgres', reachable: true },
    ]);
    expect(status.find((s) => s.service === 'kafka')?.address).toBe(endpoints.kafkaBrokers.join(','));
    expect(status.find((s) => s.service === 'registry')?.address).toBe(endpoints.schemaRegistryUrl);
  });

  it('answers a second `up` quickly, starting nothing', async () => {
    await stackUp();
    const startedAt = performance.now();
    const again = await stackUp();
    expect(again.started).toEqual([]);
    expect(performance.now() - startedAt).toBeLessThan(3_000);
  });

  it('refuses to start anything for an address that is not its own, naming the service', async () => {
    vi.stubEnv('KAFKA_BROKERS', '127.0.0.1:1');
    const failure = await stackUp().then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(failure).toBeInstanceOf(ArbiterError);
    expect((failure as ArbiterError).code).toBe('STACK_FAILED');
    expect((failure as Error).message).toMatch(/^Kafka: 127\.0\.0\.1:1 \(from KAFKA_BROKERS\) is not reachable/);
  });
});
