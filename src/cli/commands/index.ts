import type { Command } from 'commander';

/** Every subcommand registers itself; this list is the only place that names them. */
export const commands: Array<(program: Command) => void> = [];
