export { toolCommands } from './commands/index.ts';
