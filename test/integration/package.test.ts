import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deploymentArn, podArn } from '../../tools/fleet/index.ts';
import { cleanUp } from '../support/cleanup.ts';
import { endpoints, startTestEnv, type TestEnv } from '../support/harness.ts';

const exec = promisify(execFile);
const REPO = fileURLToPath(new URL('../../', import.meta.url));
const POD = podArn(deploymentArn('payments', 'api'), 'api', 2);

/** What an agent written in plain JavaScript does: no TypeScript, no tsx, only the package. */
const AGENT = `
import { ArbiterClient } from 'arbiter/sdk';

const [brokers, schemaRegistryUrl, topicPrefix, resourceArn] = process.argv.slice(2);
const arbiter = await new ArbiterClient({ brokers: brokers.split(','), schemaRegistryUrl, topicPrefix, clientId: 'plain-js-agent' }).connect();
try {
  const outcome = await arbiter.submitAndWait(
    { agentId: 'plain-js-agent', resourceArn, action: 'restart', reason: 'liveness probe failing' },
    { timeoutMs: 60000 },
  );
  process.stdout.write(JSON.stringify(outcome));
} finally {
  await arbiter.close();
}
`;

describe('the npm package, installed into an empty folder outside the repository', () => {
  let env: TestEnv | undefined;
  let packDir: string;
  let agentDir: string;
  let shipped: string[];

  beforeAll(async () => {
    packDir = mkdtempSync(join(tmpdir(), 'arbiter-pack-'));
    agentDir = mkdtempSync(join(tmpdir(), 'arbiter-plain-js-agent-'));
    // Packs the build this test run made (test/support/build-first.ts). --ignore-scripts: the
    // package's own prepack/prepare would clean and rebuild dist/ under the workers of this run.
    const packed = await exec('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', packDir], { cwd: REPO });
    const [pack] = JSON.parse(packed.stdout) as Array<{ filename: string; files: Array<{ path: string }> }>;
    shipped = pack!.files.map((f) => f.path);
    writeFileSync(join(agentDir, 'package.json'), JSON.stringify({ name: 'plain-js-agent', private: true, type: 'module' }));
    writeFileSync(join(agentDir, 'agent.mjs'), AGENT);
    // Its dependencies come from the registry (the npm cache first); a cold cache takes a while.
    await exec('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', join(packDir, pack!.filename)], {
      cwd: agentDir,
      timeout: 300_000,
    });
    env = await startTestEnv();
  }, 420_000);

  // Each step even when an earlier one fails: the temp dirs must not stay behind because stopping
  // the environment reported a problem.
  afterAll(() =>
    cleanUp('the package test', [
      () => env?.stop(),
      () => rmSync(packDir, { recursive: true, force: true }),
      () => rmSync(agentDir, { recursive: true, force: true }),
    ]),
  );

  it('ships the built product, its schemas and migrations: no tools, no TypeScript sources', () => {
    expect(shipped).toEqual(expect.arrayContaining(['bin/arbiter.js', 'dist/src/agent-sdk/index.js', 'dist/src/agent-sdk/index.d.ts', 'schemas/remediation-request.avsc', 'migrations/0001_audit-store.sql']));
    expect(shipped.filter((path) => path.startsWith('tools/') || path.startsWith('dist/tools/') || path.startsWith('test/'))).toEqual([]);
    expect(shipped.filter((path) => path.endsWith('.ts') && !path.endsWith('.d.ts'))).toEqual([]);
  });

  it('a plain .mjs agent imports arbiter/sdk, submits a restart and awaits EXECUTED from a real worker', async () => {
    const { stdout } = await exec(process.execPath, ['agent.mjs', endpoints.kafkaBrokers, endpoints.schemaRegistryUrl, env!.prefix, POD], {
      cwd: agentDir,
      timeout: 90_000,
    });
    const outcome = JSON.parse(stdout) as { requestId: string; status: string; resourceArn: string; agentId: string };
    expect(outcome).toMatchObject({ status: 'EXECUTED', resourceArn: POD, agentId: 'plain-js-agent' });
    // The worker decided it: the audit trail has its one final decision.
    const { rows } = await env!.db.query('SELECT status FROM arbiter.decisions WHERE request_id = $1 AND final', [outcome.requestId]);
    expect(rows).toEqual([{ status: 'EXECUTED' }]);
  });

  it('its `arbiter` command is the product CLI, which runs without the tools', async () => {
    const { stdout } = await exec(join(agentDir, 'node_modules', '.bin', 'arbiter'), ['--help'], { cwd: agentDir });
    for (const command of ['worker', 'migrate', 'submit', 'lock']) expect(stdout).toContain(`  ${command} `);
    for (const tool of ['stack', 'demo', 'bench', 'sim', 'test']) expect(stdout).not.toMatch(new RegExp(`^  ${tool}\\b`, 'm'));
  });
});
