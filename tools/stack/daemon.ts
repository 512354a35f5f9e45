import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

export interface DaemonSpec {
  command: string;
  args: string[];
  cwd: string;
  env?: NodeJS.ProcessEnv;
  logFile: string;
  pidFile: string;
}

/**
 * Starts a process that outlives this one (its own process group, output to a log file),
 * so `arbiter stack up` can exit and leave the service running.
 */
export function spawnDaemon(spec: DaemonSpec): number {
  mkdirSync(dirname(spec.logFile), { recursive: true });
  const log = openSync(spec.logFile, 'w');
  try {
    const child = spawn(spec.command, spec.args, {
      cwd: spec.cwd,
      env: spec.env ?? process.env,
      detached: true,
      stdio: ['ignore', log, log],
    });
    if (child.pid === undefined) throw new Error(`could not start ${spec.command}`);
    child.unref();
    writeFileSync(spec.pidFile, `${child.pid}\n`);
    return child.pid;
  } finally {
    closeSync(log);
  }
}

/**
 * The pid recorded by `stack up`, but only while that process is still ours: a pid file
 * can outlive its process and the pid can be reused, so `marker` must appear in its
 * command line (checked where /proc exists).
 */
export function livePid(pidFile: string, marker: string): number | undefined {
  if (!existsSync(pidFile)) return undefined;
  const pid = Number(readFileSync(pidFile, 'utf8').trim());
  if (!Number.isInteger(pid) || pid <= 0 || !isAlive(pid)) return undefined;
  return commandLineOf(pid)?.includes(marker) === false ? undefined : pid;
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  // A child that exited but was not reaped yet still answers signal 0.
  return !processState(pid)?.startsWith('Z');
}

/** SIGTERM to the process group, SIGKILL after `graceMs`; removes the pid file. */
export async function stopDaemon(pidFile: string, marker: string, graceMs = 15_000): Promise<number | undefined> {
  const pid = livePid(pidFile, marker);
  if (pid !== undefined) {
    signalGroup(pid, 'SIGTERM');
    // A paused (SIGSTOPped) service would only act on SIGTERM once continued.
    signalGroup(pid, 'SIGCONT');
    const deadline = Date.now() + graceMs;
    while (isAlive(pid) && Date.now() < deadline) await sleep(200);
    if (isAlive(pid)) {
      signalGroup(pid, 'SIGKILL');
      while (isAlive(pid)) await sleep(100);
    }
  }
  rmSync(pidFile, { force: true });
  return pid;
}

export function tailFile(path: string, lines = 20): string {
  if (!existsSync(path)) return '(no log file)';
  const text = readFileSync(path, 'utf8').trimEnd();
  return text === '' ? '(log is empty)' : text.split('\n').slice(-lines).join('\n');
}

export function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    // Negative pid: the whole group, so helpers the service spawned go too.
    process.kill(-pid, signal);
  } catch {
    try {
      process.kill(pid, signal);
    } catch {
      // Already gone.
    }
  }
}

function commandLineOf(pid: number): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
  } catch {
    return undefined;
  }
}

function processState(pid: number): string | undefined {
  try {
    // The state follows the parenthesised command name, which may itself contain spaces.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2);
  } catch {
    return undefined;
  }
}
