// The CLI of a repository checkout: the product's commands plus the tools around it (stack, test,
// sim, demo, bench). An installed package has no tools and runs src/cli/main.ts instead.
import { buildProgram } from '../../src/cli/index.ts';
import { toolCommands } from './commands/index.ts';

const program = buildProgram();
for (const register of toolCommands) register(program);
await program.parseAsync(process.argv);
