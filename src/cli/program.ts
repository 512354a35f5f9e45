import { Command } from 'commander';
import { commands } from './commands/index.ts';

/**
 * The product's command line: `worker`, `migrate`, `submit`, `lock`, `dead-letters`. The tools CLI
 * (tools/cli/main.ts) starts from this same program and adds its own commands to it.
 */
export function buildProgram(): Command {
  const program = new Command('arbiter')
    .description('Keeps independent SRE agents from racing each other')
    .showHelpAfterError()
    .enablePositionalOptions();
  for (const register of commands) register(program);
  return program;
}
