export { createLogger, createCliLogger, type Logger, type LoggerOptions } from './logger.ts';
export { redactUrl, scrubSecrets, secretParamPaths, secretParamScrubber, REDACT_PATHS, REDACTED } from './redact.ts';
