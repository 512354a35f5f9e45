import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { promisify } from 'node:util';
import { errorMessage } from '../../src/index.ts';

const execFileAsync = promisify(execFile);

/** Pinned: without a version, `mvn dependency:…` falls back to an old plugin release. */
export const DEPENDENCY_PLUGIN = 'org.apache.maven.plugins:maven-dependency-plugin:3.8.1';

let queue: Promise<unknown> = Promise.resolve();

/** One Maven at a time: two concurrent runs can corrupt the same files in ~/.m2. */
export function runMaven(args: string[], cwd: string): Promise<void> {
  const run = queue.then(() => mavenOnce(args, cwd));
  queue = run.catch(() => undefined);
  return run;
}

/**
 * Builds `target` in a sibling staging folder and renames it into place at the end, so a
 * download interrupted half-way is never mistaken for a complete one.
 */
export async function buildAtomically(target: string, fill: (staging: string) => Promise<void>): Promise<void> {
  const staging = `${target}.partial`;
  rmSync(staging, { recursive: true, force: true });
  mkdirSync(staging, { recursive: true });
  try {
    await fill(staging);
    if (existsSync(target)) rmSync(target, { recursive: true, force: true });
    renameSync(staging, target);
  } catch (error) {
    rmSync(staging, { recursive: true, force: true });
    throw error;
  }
}

async function mavenOnce(args: string[], cwd: string): Promise<void> {
  try {
    await execFileAsync('mvn', ['-B', '-q', ...args], { cwd, maxBuffer: 16 * 1024 * 1024, timeout: 15 * 60_000 });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new Error(
        'Maven (mvn) is needed to download the Kafka and Apicurio jars from Maven Central; ' +
          'install it (Debian: apt-get install maven) or put mvn on PATH',
      );
    }
    const output = error as { stdout?: string; stderr?: string };
    const detail = `${output.stdout ?? ''}\n${output.stderr ?? ''}`.trim().split('\n').slice(-20).join('\n');
    throw new Error(`mvn ${args.join(' ')} failed: ${errorMessage(error).split('\n')[0]}\n${detail}`, {
      cause: error,
    });
  }
}
