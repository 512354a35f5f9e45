import pino from 'pino';
import { REDACT_PATHS, REDACTED, scrubSecrets, secretParamPaths, secretParamScrubber } from './redact.ts';

export type Logger = pino.Logger;

/**
 * A destination on this file descriptor that scrubs every line (scrubSecrets) before writing it:
 * whatever a message, a binding or an error's message and stack carry — a connection string with
 * its password, say — leaves the process without the secret.
 */
function scrubbingDestination(fd: 1 | 2, scrub: (line: string) => string = scrubSecrets): pino.DestinationStream {
  const destination = pino.destination({ dest: fd, sync: false });
  const write = destination.write.bind(destination);
  destination.write = (line: string) => write(scrub(line));
  return destination;
}

export interface LoggerOptions {
  level?: string;
  name?: string;
  destination?: pino.DestinationStream;
  /** Param names the policy marks secret (every action's `secretParams`): censored as fields and as settings in text. */
  secretParams?: readonly string[];
}

/**
 * One root logger; modules take child loggers bound to their context (topic, partition, offset,
 * requestId). Secrets are kept out twice: fields known to hold them are censored (REDACT_PATHS,
 * and `params.<name>` for secret params), and every line is scrubbed of passwords in URLs, password
 * settings, bearer tokens and secret params' settings.
 */
export function createLogger(options: LoggerOptions = {}): Logger {
  const secretParams = options.secretParams ?? [];
  const scrubParams = secretParamScrubber(secretParams);
  const scrub = (line: string) => scrubParams(scrubSecrets(line));
  return pino(
    {
      name: options.name ?? 'arbiter',
      level: options.level ?? process.env.LOG_LEVEL ?? 'info',
      redact: { paths: [...REDACT_PATHS, ...secretParamPaths(secretParams)], censor: REDACTED },
      base: { pid: process.pid },
    },
    options.destination ? scrubbing(options.destination, scrub) : scrubbingDestination(1, scrub),
  );
}

/** Logs to stderr so CLI output on stdout (tables, JSON) stays machine-readable. */
export function createCliLogger(level = process.env.LOG_LEVEL ?? 'warn'): Logger {
  return pino({ name: 'arbiter', level, redact: { paths: REDACT_PATHS, censor: REDACTED } }, scrubbingDestination(2));
}

/** Wraps a given stream (tests, custom transports) so that it too receives scrubbed lines. */
function scrubbing(stream: pino.DestinationStream, scrub: (line: string) => string): pino.DestinationStream {
  return { write: (line: string) => stream.write(scrub(line)) };
}
