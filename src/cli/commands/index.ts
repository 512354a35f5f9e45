import type { Command } from 'commander';
import stack from './stack.ts';
import test from './test.ts';
import sim from './sim.ts';
import migrate from './migrate.ts';
import worker from './worker.ts';
import submit from './submit.ts';
import lock from './lock.ts';
import demo from './demo.ts';
import bench from './bench.ts';

/** Every subcommand registers itself; this list is the only place that names them. */
export const commands: Array<(program: Command) => void> = [stack, test, sim, migrate, worker, submit, lock, demo, bench];
