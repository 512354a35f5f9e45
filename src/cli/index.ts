// What the tools CLI builds on: the product's program and the helpers its commands share.
import './kafkajs-setup.ts'; // first: before anything loads kafkajs
export { buildProgram } from './program.ts';
export { configFrom, printJson, runCommand, withConfigOption } from './shared.ts';
export { errorMessage } from '../contract/errors.ts';
export { renderTable, type TableOptions } from './table.ts';
