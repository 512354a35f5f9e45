export { createLogger, createCliLogger, type Logger } from './logger.ts';
export { redactUrl, scrubSecrets, REDACT_PATHS, REDACTED } from './redact.ts';
