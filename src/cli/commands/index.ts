import type { Command } from 'commander';
import migrate from './migrate.ts';
import worker from './worker.ts';
import submit from './submit.ts';
import lock from './lock.ts';
import deadLetters from './dead-letters.ts';
import plan from './plan.ts';
import relay from './relay.ts';
import audit from './audit.ts';
import observe from './observe.ts';
import keys from './keys.ts';

/** Every product subcommand registers itself; this list is the only place that names them. */
export const commands: Array<(program: Command) => void> = [migrate, worker, relay, submit, plan, observe, lock, deadLetters, audit, keys];
