import { execFile, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ARBITER_BIN, REPO_ROOT } from '../support/index.ts';
import { summarize } from './stats.ts';

const exec = promisify(execFile);

/** One command line measured: the median of its runs, and its ratio to `node -e 0` of the same run. */
export interface StartupMeasure {
  label: string;
  wallMs: number;
  cpuMs: number;
  wallRatio: number;
  cpuRatio: number;
}

export interface StartupResult {
  date: string;
  machine: string;
  node: string;
  runs: number;
  baseline: { wallMs: number; cpuMs: number };
  commands: StartupMeasure[];
}

interface Timing {
  wallMs: number;
  cpuMs: number;
}

/**
 * Wall and CPU time of one `node …` run. bash's `time` reports the child's own user + system CPU
 * (from wait4), which Node cannot see for a child; output is discarded, as an agent's shell would.
 */
function timeOnce(args: string[], cwd: string): Timing {
  const script = 'TIMEFORMAT="%3R %3U %3S"; { time "$@" > /dev/null 2>&1; } 2>&1';
  const run = spawnSync('bash', ['-c', script, 'startup', process.execPath, ...args], { cwd, encoding: 'utf8' });
  const [real, user, sys] = (run.stdout ?? '').trim().split(/\s+/).slice(-3).map(Number);
  if (run.status !== 0 || ![real, user, sys].every((n) => Number.isFinite(n))) {
    throw new Error(`\`node ${args.join(' ')}\` failed (exit ${run.status}): ${run.stdout}${run.stderr}`);
  }
  return { wallMs: real! * 1000, cpuMs: (user! + sys!) * 1000 };
}

/** The package as an agent gets it: `npm pack` of the current build, installed into an empty folder. */
async function installPackage(): Promise<{ bin: string; dir: string; cleanup: () => void }> {
  const dir = mkdtempSync(join(tmpdir(), 'arbiter-startup-'));
  const packed = await exec('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', dir], { cwd: REPO_ROOT });
  const [pack] = JSON.parse(packed.stdout) as Array<{ filename: string }>;
  const app = join(dir, 'app');
  mkdirSync(app);
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'startup-probe', private: true }));
  await exec('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', join(dir, pack!.filename)], { cwd: app, timeout: 300_000 });
  return { bin: join(app, 'node_modules', 'arbiter', 'bin', 'arbiter.js'), dir: app, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/**
 * How long `arbiter` takes to start, from the installed package and from this checkout (the tools
 * CLI), against `node -e 0` in the same run: the runs are interleaved, one warm-up each, so a
 * machine that gets busier part-way slows every command alike.
 */
export async function measureStartup(runs = 10, log: (line: string) => void = () => {}): Promise<StartupResult> {
  log('packing and installing the package into a temporary folder…');
  const installed = await installPackage();
  try {
    const commands = [
      { label: 'node -e 0', args: ['-e', '0'], cwd: installed.dir },
      { label: 'arbiter --help (installed package: product CLI)', args: [installed.bin, '--help'], cwd: installed.dir },
      { label: 'arbiter submit --help (installed package)', args: [installed.bin, 'submit', '--help'], cwd: installed.dir },
      { label: 'arbiter --help (repository checkout: tools CLI)', args: [ARBITER_BIN, '--help'], cwd: REPO_ROOT },
    ];
    const samples = commands.map(() => ({ wall: [] as number[], cpu: [] as number[] }));
    for (const command of commands) timeOnce(command.args, command.cwd);
    log(`timing ${commands.length} commands × ${runs} runs…`);
    for (let run = 0; run < runs; run++) {
      commands.forEach((command, i) => {
        const t = timeOnce(command.args, command.cwd);
        samples[i]!.wall.push(t.wallMs);
        samples[i]!.cpu.push(t.cpuMs);
      });
    }
    const medians = samples.map((s) => ({ wallMs: summarize(s.wall).p50, cpuMs: summarize(s.cpu).p50 }));
    const baseline = medians[0]!;
    return {
      date: new Date().toISOString(),
      machine: `${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}`,
      node: process.version,
      runs,
      baseline,
      commands: commands.slice(1).map((command, i) => {
        const m = medians[i + 1]!;
        return { label: command.label, ...m, wallRatio: m.wallMs / baseline.wallMs, cpuRatio: m.cpuMs / baseline.cpuMs };
      }),
    };
  } finally {
    installed.cleanup();
  }
}

/** Rows for a table: the baseline, then each command with its ratios. */
export function startupRows(result: StartupResult): string[][] {
  const ms = (n: number) => n.toFixed(0);
  return [
    ['node -e 0 (baseline)', ms(result.baseline.wallMs), ms(result.baseline.cpuMs), '1.0×', '1.0×'],
    ...result.commands.map((c) => [c.label, ms(c.wallMs), ms(c.cpuMs), `${c.wallRatio.toFixed(1)}×`, `${c.cpuRatio.toFixed(1)}×`]),
  ];
}

export const STARTUP_COLUMNS = ['command', 'wall ms (median)', 'CPU ms (median)', 'wall / node -e 0', 'CPU / node -e 0'];
