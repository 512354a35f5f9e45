import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';

/** scripts/npm-audit.mjs, the CI gate, fed `npm audit --json` reports on stdin (the real registry's answer varies by day). */
const gate = (report: unknown, env: NodeJS.ProcessEnv = {}, level = 'high') =>
  spawnSync(process.execPath, ['scripts/npm-audit.mjs', '--stdin', '--level', level], {
    input: JSON.stringify(report),
    encoding: 'utf8',
    env: { ...process.env, NPM_AUDIT_IF_UNAVAILABLE: '', ...env },
  });

const HIGH = { source: 1, name: 'lodash', dependency: 'lodash', title: 'Prototype pollution', url: 'https://github.com/advisories/GHSA-aaaa-bbbb-cccc', severity: 'high', range: '<4.17.21' };
const MODERATE = { ...HIGH, name: 'tar', dependency: 'tar', title: 'Path traversal', url: 'https://github.com/advisories/GHSA-dddd-eeee-ffff', severity: 'moderate', range: '<6.2.1' };
const report = {
  auditReportVersion: 2,
  vulnerabilities: {
    lodash: { name: 'lodash', severity: 'high', via: [HIGH], fixAvailable: true },
    // Vulnerable only through lodash: named by string, the advisory is lodash's.
    'some-lib': { name: 'some-lib', severity: 'high', via: ['lodash'], fixAvailable: true },
    tar: { name: 'tar', severity: 'moderate', via: [MODERATE], fixAvailable: false },
  },
};

describe('npm audit CI gate', () => {
  it('fails on an advisory at the level or above, naming it; ignores those below', () => {
    const run = gate(report);
    expect(run.status).toBe(1);
    expect(run.stderr).toContain('1 advisory at high or above');
    expect(run.stderr).toContain('high lodash <4.17.21: Prototype pollution https://github.com/advisories/GHSA-aaaa-bbbb-cccc');
    expect(run.stderr).not.toContain('tar');
    expect(gate(report, {}, 'moderate').stderr).toContain('2 advisories at moderate or above');
  });

  it('passes a clean report', () => {
    const run = gate({ auditReportVersion: 2, vulnerabilities: {} });
    expect(run.status).toBe(0);
    expect(run.stdout).toContain('no advisory at high or above');
  });

  it('fails when the audit could not run, unless told to warn', () => {
    const unavailable = { message: '405 Method Not Allowed - POST https://registry.npmjs.org/-/npm/v1/security/advisories/bulk' };
    const strict = gate(unavailable);
    expect(strict.status).toBe(2);
    expect(strict.stderr).toContain('npm audit could not run: 405');
    const warned = gate(unavailable, { NPM_AUDIT_IF_UNAVAILABLE: 'warn' });
    expect(warned.status).toBe(0);
    expect(warned.stderr).toContain('NOT checked');
  });
});
