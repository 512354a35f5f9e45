import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import cliProgress from 'cli-progress';
import pg from 'pg';
import { ArbiterClient } from '../../src/index.ts';
import type { ArbiterConfig } from '../../src/config/index.ts';
import { migrate } from '../../src/db/index.ts';
import { parseFleetSpec, startSimServer, type SimServer } from '../fleet/index.ts';
import { stackDown, stackUp } from '../stack/index.ts';
import { findingsThroughArbiter, findingsWithoutArbiter } from './findings.ts';
import { FleetClient } from './fleet-client.ts';
import { renderChart, renderMarkdown, resultsTable } from './report.ts';
import type { RunResult } from './results.ts';
import { runArbitrated } from './run-arbitrated.ts';
import { runUncoordinated } from './run-uncoordinated.ts';
import { demoFleet, type Scenario, scenarios, type ScenarioScale } from './scenarios.ts';
import { prepareWorkers, startWorkers as startWorkerProcesses, type WorkerProcess } from '../support/index.ts';

export interface RaceLabOptions extends ScenarioScale {
  workers: number;
  /** How many SDK connections the agents share (each agent keeps its own identity). */
  connections: number;
  latencyScale: number;
  outDir: string;
  only?: string[];
  log: (line: string) => void;
  progress: boolean;
}

export interface RaceLabReport {
  results: RunResult[];
  ok: boolean;
  problems: string[];
  reportDir: string;
  /** The run's topics (`<prefix>.requests`, …) and their registry subjects start with it. */
  topicPrefix: string;
}

/**
 * The main job: brings up what is missing, runs independent agents through each race twice —
 * acting on the fleet directly, then through Arbiter — and reports what happened to the fleet.
 */
export async function runRaceLab(config: Readonly<ArbiterConfig>, options: RaceLabOptions): Promise<RaceLabReport> {
  const { log } = options;
  const chosen = chooseScenarios(options);
  const cleanups: Array<() => Promise<unknown>> = [];
  const results: RunResult[] = [];
  try {
    log('bringing up the stack (Kafka, schema registry, PostgreSQL) where missing…');
    const stack = await stackUp({ log: (line) => log(`  ${line}`) });
    if (stack.started.length) cleanups.push(() => stackDown({ services: stack.started }));
    const databaseUrl = process.env.DATABASE_URL ? config.databaseUrl : stack.databaseUrl;
    await migrate(databaseUrl);

    const spec = parseFleetSpec(demoFleet(options, options.latencyScale));
    const run = randomUUID().slice(0, 8);
    const prefix = `race-lab-${run}`;
    // The fleet Arbiter drives reports what it looks like, as an executor would, for the detector.
    const observer = new ArbiterClient({ brokers: stack.kafkaBrokers, schemaRegistryUrl: stack.schemaRegistryUrl, topicPrefix: prefix, clientId: 'race-lab-fleet' });
    cleanups.push(() => observer.close());
    const direct = await startSimServer({ port: 0, spec });
    const arbitrated = await startSimServer({ port: 0, spec, observations: { sink: observer, snapshotMs: 1_000 } });
    cleanups.push(() => direct.close(), () => arbitrated.close());

    const dir = mkdtempSync(join(tmpdir(), 'arbiter-race-lab-'));
    cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
    const workers = await startWorkers(options.workers, dir, prefix, run, arbitrated, stack, databaseUrl, log);
    cleanups.push(() => Promise.all(workers.map((w) => w.stop('SIGTERM'))));

    const clients = await Promise.all(
      Array.from({ length: options.connections }, (_, i) =>
        new ArbiterClient({ brokers: stack.kafkaBrokers, schemaRegistryUrl: stack.schemaRegistryUrl, topicPrefix: prefix, clientId: `race-lab-agents-${i}` }).connect(),
      ),
    );
    cleanups.push(() => Promise.all(clients.map((c) => c.close())));
    const db = new pg.Pool({ connectionString: databaseUrl, max: 2 });
    cleanups.push(() => db.end());

    const total = chosen.reduce((n, s) => n + 2 * s.intents.length, 0);
    const bar = options.progress
      ? new cliProgress.SingleBar({ format: ' {bar} {value}/{total} requests | {scenario} ({mode})', stream: process.stderr, hideCursor: true }, cliProgress.Presets.shades_classic)
      : null;
    bar?.start(total, 0, { scenario: '', mode: '' });
    const tick = () => bar?.increment();
    const labStarted = new Date();
    for (const scenario of chosen) {
      bar?.update({ scenario: scenario.name, mode: 'uncoordinated' });
      const uncoordinated = await runUncoordinated(scenario, new FleetClient(direct.url), tick);
      uncoordinated.findings = findingsWithoutArbiter(direct.fleet, scenario.marker, config.conflicts.windowMs);
      results.push(uncoordinated);
      bar?.update({ scenario: scenario.name, mode: 'arbiter' });
      results.push(await runArbitrated(scenario, new FleetClient(arbitrated.url), clients, db, tick));
    }
    bar?.stop();
    // A snapshot and a detector pass after the last change, then what the detector recorded.
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    for (const scenario of chosen) {
      const result = results.find((r) => r.scenario === scenario.name && r.mode === 'arbiter')!;
      result.findings = await findingsThroughArbiter(db, scenario.marker, labStarted);
    }

    const problems = judge(results, chosen.map((s) => ({ name: s.name, expected: s.expectedViolations })));
    const reportDir = writeReport(results, options, problems);
    return { results, ok: problems.length === 0, problems, reportDir, topicPrefix: prefix };
  } finally {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => {});
  }
}

/** `--scenario` names, checked before anything starts: a misspelt name would otherwise run nothing and pass. */
function chooseScenarios(options: RaceLabOptions): Scenario[] {
  const all = scenarios(options);
  const unknown = (options.only ?? []).filter((name) => !all.some((s) => s.name === name));
  if (unknown.length) throw new Error(`unknown scenario(s) ${unknown.join(', ')}; known: ${all.map((s) => s.name).join(', ')}`);
  return all.filter((s) => !options.only?.length || options.only.includes(s.name));
}

async function startWorkers(
  count: number,
  dir: string,
  prefix: string,
  run: string,
  sim: SimServer,
  stack: { kafkaBrokers: string[]; schemaRegistryUrl: string },
  databaseUrl: string,
  log: (line: string) => void,
): Promise<WorkerProcess[]> {
  const site = { ...stack, databaseUrl, topicPrefix: prefix, groupId: `race-lab-${run}`, executorUrl: sim.url };
  // Generous deferral: drains wait for replacements; a short reaper so a crashed holder is noticed.
  const { configFile, env } = prepareWorkers(dir, site, { deferral: { maxDeferMs: 120_000, recheckMs: 100 }, locks: { retryMs: 200 } });
  log(`starting ${count} workers (consumer group race-lab-${run})…`);
  return startWorkerProcesses(count, (i) => ({ id: `lab-worker-${i + 1}`, configFile, env }));
}

/** The lab's verdict: Arbiter must prevent every violation and answer every request exactly once. */
function judge(results: RunResult[], chosen: Array<{ name: string; expected: string[] }>): string[] {
  const problems: string[] = [];
  for (const r of results.filter((x) => x.mode === 'arbiter')) {
    if (r.violationsTotal) problems.push(`${r.scenario}: ${r.violationsTotal} violation(s) through Arbiter`);
    if (r.missingOutcomes) problems.push(`${r.scenario}: ${r.missingOutcomes} request(s) without a final outcome`);
    if (r.duplicateFinals) problems.push(`${r.scenario}: ${r.duplicateFinals} request(s) with more than one final decision`);
    const found = Object.values(r.findings).reduce((a, b) => a + b, 0);
    if (found) problems.push(`${r.scenario}: the detector found ${found} inconsistenc(ies) through Arbiter`);
  }
  for (const s of chosen) {
    const direct = results.find((r) => r.scenario === s.name && r.mode === 'uncoordinated');
    const missing = s.expected.filter((kind) => !direct?.violations[kind]);
    // Not a failure of Arbiter, but the lab did not stage the race it meant to: say so.
    if (missing.length) problems.push(`${s.name}: the uncoordinated run did not reproduce ${missing.join(', ')}`);
  }
  return problems;
}

function writeReport(results: RunResult[], options: RaceLabOptions, problems: string[]): string {
  const dir = join(options.outDir, `race-lab-${new Date().toISOString().replace(/[:.]/g, '-')}`);
  mkdirSync(dir, { recursive: true });
  const meta = {
    date: new Date().toISOString(),
    agents: options.agents,
    resources: options.resources,
    'storm duration (s)': options.durationSec,
    workers: options.workers,
    machine: `${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, ${Math.round(totalmem() / 2 ** 30)} GiB`,
    verdict: problems.length ? problems.join('; ') : 'Arbiter prevented every race; every request got exactly one final outcome',
  };
  writeFileSync(join(dir, 'report.json'), `${JSON.stringify({ meta, problems, results }, null, 2)}\n`);
  writeFileSync(join(dir, 'report.md'), renderMarkdown(results, meta));
  writeFileSync(join(dir, 'chart.svg'), renderChart(results));
  writeFileSync(join(dir, 'table.txt'), `${resultsTable(results)}\n`);
  return dir;
}
