import { mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ArbiterError } from '../../src/index.ts';
import { isAlive } from './daemon.ts';
import type { StackLog } from './types.ts';

const LOCK_WAIT_MS = 5 * 60_000;

/**
 * Several engineers (and `npm test` runs) share one machine: without this, two `stack up`
 * calls that both find Kafka down would both start one, and the second would fail to bind.
 */
export async function withStackLock<T>(lockDir: string, log: StackLog, work: () => Promise<T>): Promise<T> {
  await acquire(lockDir, log);
  try {
    return await work();
  } finally {
    rmSync(lockDir, { recursive: true, force: true });
  }
}

async function acquire(lockDir: string, log: StackLog): Promise<void> {
  const deadline = Date.now() + LOCK_WAIT_MS;
  let announced = false;
  for (;;) {
    try {
      mkdirSync(lockDir);
      writeFileSync(join(lockDir, 'owner'), `${process.pid}\n`);
      return;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    const owner = lockOwner(lockDir);
    if (owner === 'abandoned') {
      rmSync(lockDir, { recursive: true, force: true });
      continue;
    }
    if (Date.now() >= deadline) {
      throw new ArbiterError('STACK_FAILED', `another stack up/down (pid ${owner}) still holds ${lockDir} after 5 minutes`);
    }
    if (!announced) {
      log(`stack: waiting for another stack up/down to finish (pid ${owner})`);
      announced = true;
    }
    await sleep(500);
  }
}

function lockOwner(lockDir: string): number | 'unknown' | 'abandoned' {
  try {
    const pid = Number(readFileSync(join(lockDir, 'owner'), 'utf8').trim());
    return isAlive(pid) ? pid : 'abandoned';
  } catch {
    // The owner creates the directory, then writes its pid: give it a moment to do so.
    try {
      return Date.now() - statSync(lockDir).mtimeMs > 10_000 ? 'abandoned' : 'unknown';
    } catch {
      return 'unknown';
    }
  }
}
