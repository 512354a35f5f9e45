export { createLogger, createCliLogger, type Logger } from './logger.ts';
