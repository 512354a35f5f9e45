import pino from 'pino';

export type Logger = pino.Logger;

/**
 * One root logger; modules take child loggers bound to their context (topic, partition, offset,
 * requestId). Credentials in connection strings are redacted.
 */
export function createLogger(options: { level?: string; name?: string } = {}): Logger {
  return pino({
    name: options.name ?? 'arbiter',
    level: options.level ?? process.env.LOG_LEVEL ?? 'info',
    redact: { paths: ['databaseUrl', '*.databaseUrl', 'password', '*.password'], censor: '[redacted]' },
    base: { pid: process.pid },
  });
}

/** Logs to stderr so CLI output on stdout (tables, JSON) stays machine-readable. */
export function createCliLogger(level = process.env.LOG_LEVEL ?? 'warn'): Logger {
  return pino({ name: 'arbiter', level }, pino.destination(2));
}
