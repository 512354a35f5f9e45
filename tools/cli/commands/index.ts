import type { Command } from 'commander';
import stack from './stack.ts';
import test from './test.ts';
import sim from './sim.ts';
import demo from './demo.ts';
import bench from './bench.ts';
import startup from './startup.ts';

/** The tool subcommands, added to the product's program by tools/cli/main.ts. */
export const toolCommands: Array<(program: Command) => void> = [stack, test, sim, demo, bench, startup];
