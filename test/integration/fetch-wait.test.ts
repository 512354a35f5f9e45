import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestEnv, type TestEnv } from '../support/harness.ts';

const POD = 'arn:sim:k8s:local:000000000000:cluster/prod/ns/payments/deployment/api/pod/api-1';

/**
 * kafka.fetchMaxWaitMs is how long the broker may hold a fetch that finds nothing: what an idle
 * worker's three consumers cost between records. Raising it must not delay a record that arrives
 * during the wait (the broker answers a fetch as soon as one record is there). With an 8 s wait,
 * a request sent to an idle worker is still decided and answered in far less than the wait.
 */
describe('a long fetch wait adds no latency', () => {
  let env: TestEnv;
  beforeAll(async () => {
    env = await startTestEnv({ workers: 1, latencyScale: 0.01, config: { kafka: { fetchMaxWaitMs: 8_000 } } });
  });
  afterAll(async () => {
    await env?.stop();
  });

  it('a request sent while the worker long-polls is decided at once', async () => {
    expect(env.config.kafka.fetchMaxWaitMs).toBe(8_000);
    const client = await env.client('fetch-wait');
    // Let every consumer of the worker settle into a long poll on empty partitions.
    await sleep(3_000);
    const started = Date.now();
    const outcome = await client.submitAndWait({ agentId: 'fetch-wait', resourceArn: POD, action: 'restart' }, { timeoutMs: 60_000 });
    const elapsed = Date.now() - started;
    expect(outcome.status).toBe('EXECUTED');
    expect(elapsed).toBeLessThan(4_000);
    const { rows } = await env.db.query('SELECT latency_ms FROM arbiter.decisions WHERE request_id = $1 ORDER BY decided_at LIMIT 1', [outcome.requestId]);
    expect(Number(rows[0].latency_ms)).toBeLessThan(4_000);
    // The part of it spent before the worker had the record (arbiter_fetch_delay_seconds): one record, well under the wait.
    const metrics = await fetch(`${env.workers[0]!.metricsUrl}/metrics`).then((r) => r.text());
    const value = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(metrics)?.[1]);
    expect(value('arbiter_fetch_delay_seconds_count')).toBe(1);
    expect(value('arbiter_fetch_delay_seconds_sum')).toBeLessThan(4);
    expect(value('arbiter_fetch_delay_seconds_sum')).toBeLessThanOrEqual(Number(rows[0].latency_ms) / 1000);
  });
});
