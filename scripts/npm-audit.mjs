#!/usr/bin/env node
/* global process, console, URL */
// CI gate: `npm audit` of the production dependencies at a severity threshold, naming each
// advisory found, with documented exceptions (.ci/audit-exceptions.json). Usage:
//   node scripts/npm-audit.mjs [--level high] [--stdin]
// --stdin reads an `npm audit --json` report instead of running npm (tests).
// Exit: 0 clean, 1 advisories at or above the level, 2 the audit could not run (the registry's
// advisory service unreachable or refusing); NPM_AUDIT_IF_UNAVAILABLE=warn turns 2 into a loud
// warning and 0, for registries (mirrors, proxies) that serve packages but not advisories.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';

const SEVERITIES = ['info', 'low', 'moderate', 'high', 'critical'];
const args = process.argv.slice(2);
const level = args.includes('--level') ? args[args.indexOf('--level') + 1] : 'high';
if (!SEVERITIES.includes(level)) fail(2, `--level must be one of ${SEVERITIES.join(', ')}`);

const exceptionsFile = new URL('../.ci/audit-exceptions.json', import.meta.url);
/** Advisories accepted on purpose: [{ "advisory": "https://github.com/advisories/GHSA-…", "reason": "…" }]. */
const exceptions = JSON.parse(readFileSync(exceptionsFile, 'utf8'));

const text = args.includes('--stdin') ? readFileSync(0, 'utf8') : await runNpmAudit();
let report;
try {
  report = JSON.parse(text);
} catch {
  fail(2, `npm audit printed no JSON report:\n${text.slice(0, 2_000)}`);
}
if (!report.vulnerabilities) {
  const reason = report.message ?? report.error?.summary ?? JSON.stringify(report).slice(0, 500);
  const message = `npm audit could not run: ${reason}`;
  if (process.env.NPM_AUDIT_IF_UNAVAILABLE === 'warn') {
    console.error(`WARNING: ${message}\nWARNING: the production dependencies were NOT checked for advisories.`);
    process.exit(0);
  }
  fail(2, message);
}

const atLeast = (severity) => SEVERITIES.indexOf(severity) >= SEVERITIES.indexOf(level);
const advisories = new Map();
for (const vulnerability of Object.values(report.vulnerabilities)) {
  for (const via of vulnerability.via) {
    // A string names another vulnerable package: its own entry carries the advisory.
    if (typeof via === 'object' && atLeast(via.severity)) advisories.set(via.url, { ...via, package: vulnerability.name, fixAvailable: vulnerability.fixAvailable });
  }
}
const accepted = new Set(exceptions.map((e) => e.advisory));
const open = [...advisories.values()].filter((a) => !accepted.has(a.url));
for (const a of advisories.values()) {
  if (accepted.has(a.url)) console.log(`accepted (${exceptionsFile.pathname}): ${a.severity} ${a.package} ${a.range} ${a.title} ${a.url}`);
}
if (open.length > 0) {
  const lines = open.map((a) => `  ${a.severity} ${a.package} ${a.range}: ${a.title} ${a.url}${a.fixAvailable ? ' (fix available: npm audit fix)' : ''}`);
  fail(1, `npm audit: ${open.length} advisor${open.length === 1 ? 'y' : 'ies'} at ${level} or above in production dependencies:\n${lines.join('\n')}`);
}
console.log(`npm audit: no advisory at ${level} or above in production dependencies (${advisories.size - open.length} accepted)`);

function runNpmAudit() {
  return new Promise((resolve) => {
    // npm audit exits non-zero when it finds something or fails; the JSON says which.
    execFile('npm', ['audit', '--omit=dev', '--json'], { maxBuffer: 64 * 1024 * 1024 }, (_error, stdout) => resolve(stdout));
  });
}

function fail(code, message) {
  console.error(message);
  process.exit(code);
}
