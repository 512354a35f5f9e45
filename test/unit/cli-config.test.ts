import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';

const exec = promisify(execFile);

describe('a bad configuration fails at start-up, naming every problem', () => {
  const dir = mkdtempSync(join(tmpdir(), 'arbiter-cfg-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('`arbiter worker --config bad.yaml` exits 1 and lists each problem before touching any service', async () => {
    const file = join(dir, 'bad.yaml');
    writeFileSync(
      file,
      ['kafka:', '  brokers: ["no-port"]', '  heartbeatIntervalMs: 20000', 'locks:', '  ttlMs: -5', 'budget:', '  workloads:', '    - { match: "(", minAvailable: 1 }', 'colour: blue', ''].join('\n'),
    );
    const error = await exec(process.execPath, ['bin/arbiter.js', 'worker', '--config', file], { env: { ...process.env, KAFKA_BROKERS: '' } }).then(
      () => null,
      (e: { code: number; stderr: string }) => e,
    );
    expect(error).not.toBeNull();
    expect(error!.code).toBe(1);
    expect(error!.stderr).toContain('CONFIG_INVALID');
    expect(error!.stderr).toContain('kafka.brokers[0]');
    expect(error!.stderr).toContain('budget.workloads[0].match: not a valid regular expression');
    expect(error!.stderr).toContain('kafka.heartbeatIntervalMs');
    expect(error!.stderr).toContain('locks.ttlMs');
    expect(error!.stderr).toMatch(/colour/);
  });
});
