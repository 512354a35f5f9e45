import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { launchNode, REPO_ROOT } from '../support/index.ts';
import { note } from './progress.ts';

/**
 * `--baseline <ref>`: another commit's worker, built once in a git worktree of its own under the
 * cache (~/.cache/arbiter/bench-baseline/<sha>, or $ARBITER_BENCH_CACHE) and reused by later runs.
 * It is started exactly as this checkout's worker is (`bin/arbiter.js worker --config <file>` with
 * the site in the environment) and migrates its own database with its own `bin/arbiter.js migrate`:
 * both interfaces are the same back to 1ce7a6a.
 */
export interface BaselineBuild {
  ref: string;
  commit: string;
  dir: string;
  /** Its bin/arbiter.js. */
  bin: string;
  /** How node_modules came about: a link to this checkout's (lock files agree), `npm ci`, or an earlier run's build. */
  install: 'linked' | 'npm ci' | 'cached';
  installSeconds: number;
  buildSeconds: number;
}

const MARKER = '.arbiter-bench-built.json';

function git(args: string[], cwd = REPO_ROOT): string {
  return execFileSync('git', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
}

function timed(what: string, command: string, args: string[], cwd: string): number {
  const started = performance.now();
  note(`baseline: ${what} (${command} ${args.join(' ')})`);
  try {
    execFileSync(command, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  } catch (error) {
    const e = error as { stdout?: string; stderr?: string; message: string };
    throw new Error(`baseline: ${what} failed in ${cwd}: ${e.message}\n${(e.stdout ?? '').slice(-4_000)}${(e.stderr ?? '').slice(-4_000)}`);
  }
  const seconds = (performance.now() - started) / 1000;
  note(`baseline: ${what} took ${seconds.toFixed(1)} s`);
  return seconds;
}

type LockPackages = Record<string, { version?: string; resolved?: string; integrity?: string }>;

/**
 * Packages the baseline's lock file needs that this checkout's node_modules does not hold at the
 * same version: none means the baseline can run and build on a link to ours. A superset is fine
 * (a dependency added since the baseline, such as the bench's own devDependencies).
 */
export function lockDifferences(current: { packages?: LockPackages }, baseline: { packages?: LockPackages }): string[] {
  const ours = current.packages ?? {};
  const differences: string[] = [];
  for (const [path, wanted] of Object.entries(baseline.packages ?? {})) {
    if (path === '') continue; // the root project itself: its name and dependency lists, not an installed package
    const have = ours[path];
    if (!have || have.version !== wanted.version || (wanted.integrity && have.integrity && have.integrity !== wanted.integrity)) {
      differences.push(`${path.replace(/^node_modules\//, '')}@${wanted.version ?? '?'}${have ? ` (have ${have.version ?? '?'})` : ' (missing)'}`);
    }
  }
  return differences;
}

function cacheRoot(): string {
  return process.env.ARBITER_BENCH_CACHE ?? join(homedir(), '.cache', 'arbiter', 'bench-baseline');
}

/** Builds (or finds already built) the worker of `ref`. */
export function prepareBaseline(ref: string): BaselineBuild {
  let commit: string;
  try {
    commit = git(['rev-parse', '--verify', `${ref}^{commit}`]);
  } catch {
    throw new Error(`--baseline ${ref}: not a commit in ${REPO_ROOT}`);
  }
  const dir = join(cacheRoot(), commit);
  const bin = join(dir, 'bin', 'arbiter.js');
  const marker = join(dir, MARKER);
  // node_modules may be a link to a checkout that is gone since (existsSync follows the link).
  if (existsSync(marker) && existsSync(join(dir, 'dist', 'tools', 'cli', 'main.js')) && existsSync(join(dir, 'node_modules', 'commander'))) {
    note(`baseline ${ref} (${commit.slice(0, 7)}): built already in ${dir}`);
    return { ref, commit, dir, bin, install: 'cached', installSeconds: 0, buildSeconds: 0 };
  }
  mkdirSync(cacheRoot(), { recursive: true });
  // A directory left half-made by an interrupted run: drop it and its worktree entry.
  if (existsSync(dir)) rmSync(dir, { recursive: true, force: true });
  git(['worktree', 'prune']);
  note(`baseline ${ref} (${commit.slice(0, 7)}): worktree in ${dir}`);
  git(['worktree', 'add', '--detach', '--force', dir, commit]);

  const readLock = (root: string) => JSON.parse(readFileSync(join(root, 'package-lock.json'), 'utf8')) as { packages?: LockPackages };
  const differences = lockDifferences(readLock(REPO_ROOT), readLock(dir));
  let install: BaselineBuild['install'];
  let installSeconds = 0;
  if (differences.length === 0) {
    // Linking takes no time; `npm ci` of this project takes ~1 min here (and the network).
    symlinkSync(join(REPO_ROOT, 'node_modules'), join(dir, 'node_modules'), 'dir');
    install = 'linked';
    note('baseline: its package-lock.json is covered by this checkout\'s node_modules: linked');
  } else {
    note(`baseline: ${differences.length} locked packages differ (${differences.slice(0, 5).join(', ')}${differences.length > 5 ? ', …' : ''}): npm ci`);
    installSeconds = timed('npm ci', 'npm', ['ci', '--no-audit', '--no-fund'], dir);
    install = 'npm ci';
  }
  const buildSeconds = timed('build', 'npm', ['run', '--silent', 'build'], dir);
  writeFileSync(marker, JSON.stringify({ ref, commit, install, installSeconds, buildSeconds, at: new Date().toISOString() }, null, 2));
  return { ref, commit, dir, bin, install, installSeconds, buildSeconds };
}

/** `arbiter migrate` of the baseline build, on its own database (created when missing). */
export async function migrateWithBin(bin: string, dir: string, configFile: string, env: NodeJS.ProcessEnv): Promise<void> {
  const child = launchNode({ label: 'baseline migrate', args: [bin, 'migrate', '--config', configFile], env, cwd: dir });
  const code = await child.exited;
  if (code !== 0) throw new Error(`baseline migrate exited with ${code}:\n${child.output()}`);
}
