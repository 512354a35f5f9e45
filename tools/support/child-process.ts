import { createWriteStream, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { REPO_ROOT } from './paths.ts';

/** How much of a child's output is kept for error messages. */
const OUTPUT_TAIL_CHARS = 20_000;

/** A node child process the tools started and must stop again. */
export interface NodeChild {
  readonly child: ChildProcess;
  readonly pid: number;
  /** Resolves with the exit code (null when a signal ended it). */
  readonly exited: Promise<number | null>;
  running(): boolean;
  /** The last 20 kB it wrote to stdout and stderr. */
  output(): string;
  /** Resolves with the first match of `pattern` in its output; rejects if it exits or time runs out first. */
  waitForOutput(pattern: RegExp, timeoutMs: number): Promise<RegExpExecArray>;
  /**
   * Sends `signal` (SIGTERM: drain) and waits for the exit; a child still running after
   * `graceMs` gets SIGKILL, so a stuck drain never keeps the caller waiting for ever.
   */
  stop(signal?: NodeJS.Signals, graceMs?: number): Promise<number | null>;
}

export interface LaunchOptions {
  /** Arguments after `node`: flags, the script, its arguments. */
  args: string[];
  env?: NodeJS.ProcessEnv;
  /** For error messages. */
  label: string;
  /** Working directory (default: the repository checkout). */
  cwd?: string;
}

export function launchNode(options: LaunchOptions): NodeChild {
  const child = spawn(process.execPath, options.args, {
    cwd: options.cwd ?? REPO_ROOT,
    env: options.env ?? process.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let tail = '';
  const keep = (chunk: Buffer) => {
    tail = (tail + chunk.toString()).slice(-OUTPUT_TAIL_CHARS);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  // ARBITER_CHILD_LOG_DIR keeps each child's whole output in a file (debugging a bench or test run).
  const logDir = process.env.ARBITER_CHILD_LOG_DIR;
  if (logDir) {
    mkdirSync(logDir, { recursive: true });
    const file = createWriteStream(join(logDir, `${options.label.replace(/\W+/g, '-')}-${child.pid}.log`));
    child.stdout!.pipe(file);
    child.stderr!.pipe(file);
  }
  let hasExited = false;
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => {
      hasExited = true;
      resolve(code);
    }),
  );
  const running = () => !hasExited;
  return {
    child,
    pid: child.pid!,
    exited,
    running,
    output: () => tail,
    async waitForOutput(pattern, timeoutMs) {
      const until = Date.now() + timeoutMs;
      for (;;) {
        const found = pattern.exec(tail);
        if (found) return found;
        if (!running()) throw new Error(`${options.label} exited during start-up:\n${tail}`);
        if (Date.now() > until) throw new Error(`${options.label} did not start within ${timeoutMs} ms:\n${tail}`);
        await sleep(50);
      }
    },
    async stop(signal = 'SIGTERM', graceMs = 60_000) {
      if (running()) child.kill(signal);
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      try {
        return await exited;
      } finally {
        clearTimeout(timer);
      }
    },
  };
}
