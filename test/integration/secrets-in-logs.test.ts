import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnWorker } from '../../tools/support/index.ts';
import { startTestEnv, type TestEnv, type WorkerProcess } from '../support/harness.ts';

const SECRET = 'S3cretPassw0rd';
const SASL_SECRET = 'SaslS3cret-0f-the-worker';
const POD = 'arn:sim:k8s:local:000000000000:cluster/prod/ns/payments/deployment/api/pod/api-0';

/**
 * A real `arbiter worker` whose DATABASE_URL carries a password (the test server trusts loopback,
 * so the password is not checked, only carried) logs at debug level, does work, and serves
 * /metrics: the password appears in none of it. Its sessions also run as arbiter_worker (libpq
 * options `-c role=arbiter_worker`), so the same run shows a worker doing its job with that role's
 * privileges only (migrations/0009_roles.sql). A second worker whose database cannot be reached
 * fails at start-up with the password in its URL: the error it logs does not show it either.
 *
 * SASL: the second worker also gets KAFKA_SASL_USERNAME/KAFKA_SASL_PASSWORD; the logger censors
 * `sasl` fields and password settings whatever logs them (unit test log-redaction.test.ts). The
 * local broker does not speak SASL, so a working SASL worker is for the secure-stack tests.
 */
describe('secrets in logs', () => {
  let env: TestEnv;
  let worker: WorkerProcess;
  let unreachable: WorkerProcess | undefined;
  let workerUrl: string;

  beforeAll(async () => {
    env = await startTestEnv({ workers: 0 });
    const url = new URL(env.databaseUrl);
    url.password = SECRET;
    url.searchParams.set('options', '-c role=arbiter_worker');
    workerUrl = url.toString();
    worker = await spawnWorker({ id: `secrets-${env.prefix}`, configFile: env.configFile, env: { ...env.cliEnv, DATABASE_URL: workerUrl, LOG_LEVEL: 'debug' } });
    env.workers.push(worker);
    await worker.waitReady();
  });
  afterAll(async () => {
    await unreachable?.stop('SIGKILL');
    await env?.stop();
  });

  it('a worker with a password in DATABASE_URL does its work as arbiter_worker and never shows the password', async () => {
    const client = await env.client('secrets-agent');
    const outcome = await client.submitAndWait({ agentId: 'secrets-agent', resourceArn: POD, action: 'restart' }, { timeoutMs: 60_000 });
    expect(outcome.status).toBe('EXECUTED');
    const metrics = await (await fetch(`${worker.metricsUrl}/metrics`)).text();
    expect(metrics).toContain('arbiter_');
    expect(metrics).not.toContain(SECRET);

    // Its URL makes sessions that run as arbiter_worker (what the worker's pool connected with).
    const probe = new pg.Client({ connectionString: workerUrl });
    await probe.connect();
    expect((await probe.query('SELECT current_user AS who')).rows[0].who).toBe('arbiter_worker');
    await probe.end();
    const stored = await env.db.query('SELECT count(*)::int AS n FROM arbiter.decisions WHERE request_id = $1 AND final', [outcome.requestId]);
    expect(stored.rows[0].n).toBe(1);

    await worker.stop('SIGTERM');
    const output = worker.output();
    expect(output).toContain('worker running');
    expect(output).not.toContain(SECRET);
    expect(output).not.toMatch(/permission denied/);
  });

  it('a worker that cannot reach its database (and has a SASL password) logs the failure without either secret', async () => {
    const url = new URL(env.databaseUrl);
    url.password = SECRET;
    url.port = '1'; // nothing listens there
    // With a SASL password as well (KAFKA_SASL_*, where the config knows them; the local broker does
    // not speak SASL, so this worker fails on Kafka too): neither secret may show.
    unreachable = await spawnWorker({
      id: `secrets-bad-${env.prefix}`,
      configFile: env.configFile,
      env: { ...env.cliEnv, DATABASE_URL: url.toString(), LOG_LEVEL: 'debug', KAFKA_SASL_USERNAME: 'arbiter-worker', KAFKA_SASL_PASSWORD: SASL_SECRET },
    });
    const code = await Promise.race([unreachable.exited, new Promise<'running'>((resolve) => setTimeout(() => resolve('running'), 10_000))]);
    if (code === 'running') await unreachable.stop('SIGTERM', 10_000);
    const output = unreachable.output();
    expect(output).toMatch(/ECONNREFUSED|connect|sasl/i);
    expect(output).not.toContain(SECRET);
    expect(output).not.toContain(SASL_SECRET);
  });
});
