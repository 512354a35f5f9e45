import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnWorker } from '../../tools/support/index.ts';
import { startTestEnv, type TestEnv } from '../support/harness.ts';
import { forwardTo, stubRegistry, type StubRegistry } from '../support/registry-stub.ts';

/**
 * A fresh Apicurio can take longer than a registry call's timeout to answer its first
 * registrations. A worker (which runs the plan relay by default) and `arbiter relay` must wait for
 * it rather than exit: a CI run once lost a worker because its relay registered the plan subjects
 * outside the start-up step that waits for the registry.
 */

/** In front of the real registry: the first `failures` calls that name a plan subject get HTTP 503. */
async function warmingRegistry(upstream: string, failures: number): Promise<StubRegistry & { failed: () => number }> {
  let failed = 0;
  const registry = await stubRegistry(async (req, res, body) => {
    if ((req.url ?? '').includes('.plan-') && failed < failures) {
      failed++;
      res.writeHead(503, { 'content-type': 'application/json' }).end('{"error_code":50301,"message":"warming up"}');
      return;
    }
    await forwardTo(upstream, req, res, body);
  });
  return { ...registry, failed: () => failed };
}

describe('a schema registry still warming up at start-up', () => {
  let env: TestEnv;
  beforeAll(async () => {
    env = await startTestEnv({ workers: 0, partitions: 2 });
  }, 60_000);
  afterAll(() => env?.stop());

  // The registry client tries each call 4 times: 10 refusals fail the first registration of the
  // plan subjects and the second, so only a start-up that waits gets through.
  for (const command of ['worker', 'relay'] as const) {
    it(`\`arbiter ${command}\` waits for it, says so, and becomes ready`, async () => {
      const registry = await warmingRegistry(env.cliEnv.SCHEMA_REGISTRY_URL!, 10);
      try {
        const proc = await spawnWorker({ id: `${command}-warmup-${env.prefix}`, configFile: env.configFile, env: { ...env.cliEnv, SCHEMA_REGISTRY_URL: registry.url }, command });
        (command === 'worker' ? env.workers : env.relays).push(proc);
        await proc.waitReady(60_000);
        expect(registry.failed()).toBe(10);
        expect(proc.output()).toContain('waiting for the schema registry');
      } finally {
        await registry.close();
      }
    }, 90_000);
  }
});
