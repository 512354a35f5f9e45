import './kafkajs-setup.ts'; // first: before anything loads kafkajs
import { buildProgram } from './program.ts';

await buildProgram().parseAsync(process.argv);
