import { Command } from 'commander';
import { commands } from './commands/index.ts';

const program = new Command('arbiter')
  .description('Keeps independent SRE agents from racing each other')
  .showHelpAfterError()
  .enablePositionalOptions();

for (const register of commands) register(program);

await program.parseAsync(process.argv);
