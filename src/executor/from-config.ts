import { readFileSync } from 'node:fs';
import { ArbiterError } from '../contract/errors.ts';
import type { HttpExecutorOptions } from './http-executor.ts';

/** The `executor:` section of the config (src/config/config.ts), as far as the HttpExecutor reads it. */
export interface ExecutorSettings {
  url: string;
  timeoutMs: number;
  hmacKey?: string | undefined;
  hmacKeyFile?: string | undefined;
  bearerToken?: string | undefined;
  bearerTokenFile?: string | undefined;
  headers?: Readonly<Record<string, string>> | undefined;
  maxConnections?: number | null | undefined;
}

/**
 * The HttpExecutor's options from the config section and the environment. Secrets may come from
 * the environment (`ARBITER_EXECUTOR_HMAC_KEY`, `ARBITER_EXECUTOR_TOKEN`, which win over the
 * file, as every explicitly set variable does), the config, or a file the config names (a mounted
 * Secret). A file that cannot be read, or is empty, fails start-up naming the file, not its content.
 */
export function httpExecutorOptions(settings: ExecutorSettings, env: NodeJS.ProcessEnv = process.env): HttpExecutorOptions {
  const hmacKey = nonEmpty(env.ARBITER_EXECUTOR_HMAC_KEY) ?? nonEmpty(settings.hmacKey) ?? secretFile(settings.hmacKeyFile, 'executor.hmacKeyFile');
  const bearerToken = nonEmpty(env.ARBITER_EXECUTOR_TOKEN) ?? nonEmpty(settings.bearerToken) ?? secretFile(settings.bearerTokenFile, 'executor.bearerTokenFile');
  return {
    baseUrl: settings.url,
    timeoutMs: settings.timeoutMs,
    ...(settings.headers && Object.keys(settings.headers).length > 0 ? { headers: { ...settings.headers } } : {}),
    ...(bearerToken ? { bearerToken } : {}),
    ...(hmacKey ? { hmacKey } : {}),
    ...(settings.maxConnections !== undefined ? { maxConnections: settings.maxConnections } : {}),
  };
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value;
}

function secretFile(file: string | undefined, field: string): string | undefined {
  if (file === undefined || file === '') return undefined;
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new ArbiterError('CONFIG_INVALID', `${field}: cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? 'error'}`, { cause: error });
  }
  const secret = text.trim();
  if (secret === '') throw new ArbiterError('CONFIG_INVALID', `${field}: ${file} is empty`);
  return secret;
}
