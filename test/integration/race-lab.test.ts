import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import type { RunResult } from '../../tools/race-lab/index.ts';

const run = promisify(execFile);

describe('`arbiter demo --json`: the race lab', () => {
  it('uncoordinated agents cause every seed race; through Arbiter there is no violation and every request has exactly one final outcome', async () => {
    const out = mkdtempSync(join(tmpdir(), 'race-lab-'));
    const { stdout } = await run(
      process.execPath,
      ['bin/arbiter.js', 'demo', '--json', '--agents', '20', '--duration', '2', '--out', out],
      { env: { ...process.env, DATABASE_URL: process.env.DATABASE_URL?.replace(/\/[^/]*$/, '/arbiter_race_lab_test') }, timeout: 240_000, maxBuffer: 10_000_000 },
    );
    const report = JSON.parse(stdout) as { ok: boolean; problems: string[]; reportDir: string; results: RunResult[] };
    const get = (scenario: string, mode: string) => report.results.find((r) => r.scenario === scenario && r.mode === mode)!;

    expect(get('same-pod-restart', 'uncoordinated').violations.overlapping_restart).toBeGreaterThan(0);
    expect(get('rollback-vs-hotfix', 'uncoordinated').violations.lost_hotfix).toBeGreaterThan(0);
    expect(get('concurrent-drains', 'uncoordinated').violations.below_min_available).toBeGreaterThan(0);
    expect(get('drain-then-terminate', 'uncoordinated').violations.terminate_before_drain).toBeGreaterThan(0);

    for (const r of report.results.filter((x) => x.mode === 'arbiter')) {
      expect(r.violationsTotal, `${r.scenario} violations through Arbiter`).toBe(0);
      expect(r.missingOutcomes, `${r.scenario} requests without a final outcome`).toBe(0);
      expect(r.duplicateFinals, `${r.scenario} requests with two final decisions`).toBe(0);
    }
    expect(get('same-pod-restart', 'arbiter')).toMatchObject({ executions: 1, coalesced: 19 });
    expect(get('rollback-vs-hotfix', 'arbiter').executions).toBe(1);
    expect(report.ok).toBe(true);
    for (const file of ['report.json', 'report.md', 'chart.svg']) expect(existsSync(join(report.reportDir, file)), file).toBe(true);
  }, 240_000);
});
