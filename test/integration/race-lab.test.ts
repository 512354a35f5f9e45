import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import type { RunResult } from '../../tools/race-lab/index.ts';
import { cleanUp, removeInstallation } from '../support/cleanup.ts';
import { databaseUrlFor, dropDatabase } from '../support/harness.ts';

const run = promisify(execFile);

interface DemoReport {
  ok: boolean;
  problems: string[];
  reportDir: string;
  topicPrefix: string;
  results: RunResult[];
}

describe('`arbiter demo --json`: the race lab', () => {
  // This run's own database: a fixed name would be shared by two runs at once and would carry the
  // audit trail of an interrupted earlier run into this one.
  const databaseUrl = databaseUrlFor(`arbiter_race_lab_${randomUUID().slice(0, 8)}`);
  const out = mkdtempSync(join(tmpdir(), 'arbiter-race-lab-report-'));
  /** Known once the lab has printed its report: its topics and subjects are named with it. */
  const topicPrefixes: Array<string | undefined> = [];

  afterAll(() =>
    cleanUp('the race lab run', [
      ...topicPrefixes.map((topicPrefix) => () => {
        // Said, not skipped: without the prefix this run's topics cannot be told from another
        // run's (race-lab-*), so they stay behind.
        if (topicPrefix === undefined) throw new Error('the race lab printed no topic prefix, so its topics and subjects were not removed');
        return removeInstallation(topicPrefix);
      }),
      () => dropDatabase(databaseUrl),
      () => rmSync(out, { recursive: true, force: true }),
    ]),
  );

  /** Runs `arbiter demo --json …`; the lab exits 1 when it found problems, still printing its report: read it either way. */
  async function demo(args: string[]): Promise<{ code: number; report: DemoReport }> {
    const { code, stdout, stderr } = await run(
      process.execPath,
      ['bin/arbiter.js', 'demo', '--json', ...args],
      { env: { ...process.env, DATABASE_URL: databaseUrl }, timeout: 240_000, maxBuffer: 10_000_000 },
    ).then(
      ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
      (error: { code?: number; stdout?: string; stderr?: string }) => ({ code: error.code ?? -1, stdout: error.stdout ?? '', stderr: error.stderr ?? '' }),
    );
    let report: DemoReport;
    try {
      report = JSON.parse(stdout) as DemoReport;
    } catch {
      topicPrefixes.push(undefined);
      throw new Error(`the race lab printed no JSON report (exit ${code}):\n${stderr.slice(-4_000)}`);
    }
    topicPrefixes.push(report.topicPrefix);
    expect(report.topicPrefix).toMatch(/^race-lab-[0-9a-f]{8}$/);
    return { code, report };
  }

  it('uncoordinated agents cause every seed race; through Arbiter there is no violation and every request has exactly one final outcome', async () => {
    const { code, report } = await demo(['--agents', '20', '--duration', '2', '--out', out]);
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
    // The detector: the rollbacks that erased hotfixes are found (lost_change, and conflicting_commits
    // where a rollback's basis predates a hotfix); through Arbiter it finds nothing.
    expect(get('rollback-vs-hotfix', 'uncoordinated').findings.lost_change).toBeGreaterThan(0);
    expect(get('rollback-vs-hotfix', 'uncoordinated').findings.conflicting_commits).toBeGreaterThan(0);
    for (const r of report.results.filter((x) => x.mode === 'arbiter')) expect(r.findings, `${r.scenario} findings through Arbiter`).toEqual({});
    expect(get('same-pod-restart', 'arbiter')).toMatchObject({ executions: 1, coalesced: 19 });
    expect(get('rollback-vs-hotfix', 'arbiter').executions).toBe(1);
    expect(report.problems).toEqual([]);
    expect(report.ok).toBe(true);
    expect(code).toBe(0);
    for (const file of ['report.json', 'report.md', 'chart.svg']) expect(existsSync(join(report.reportDir, file)), file).toBe(true);
  }, 240_000);

  it('`--scenario node-replacement`: nodes replaced while agents work on their pods; violations only on the uncoordinated side', async () => {
    const { code, report } = await demo(['--scenario', 'node-replacement', '--out', out]);
    expect(report.results.map((r) => `${r.scenario}/${r.mode}`)).toEqual(['node-replacement/uncoordinated', 'node-replacement/arbiter']);
    const [uncoordinated, arbiter] = report.results as [RunResult, RunResult];
    expect(uncoordinated.violations.below_min_available).toBeGreaterThan(0);
    expect(uncoordinated.violations.terminate_before_drain).toBeGreaterThan(0);
    expect(arbiter.violationsTotal).toBe(0);
    expect(arbiter.missingOutcomes).toBe(0);
    expect(arbiter.duplicateFinals).toBe(0);
    // Nothing refused or failed: every drain went through the budgets, every terminate ran once its node was drained.
    expect(arbiter.failed).toBe(0);
    expect(arbiter.rejected).toEqual({});
    // Terminates waited for their nodes' drains (the careless one included) rather than being refused.
    expect(arbiter.deferred).toBeGreaterThan(0);
    expect(report.ok).toBe(true);
    expect(code).toBe(0);
  }, 240_000);
});
