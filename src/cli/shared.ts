import type { Command } from 'commander';
import { loadConfig, type ArbiterConfig } from '../config/index.ts';
import { ArbiterError, errorMessage } from '../contract/errors.ts';

/** `--config FILE` on any command that needs the configuration. */
export function withConfigOption(command: Command): Command {
  return command.option('-c, --config <file>', 'config file (YAML or JSON); env ARBITER_CONFIG');
}

export function configFrom(options: { config?: string }): Readonly<ArbiterConfig> {
  return loadConfig({ file: options.config });
}

/** Prints a clear error (config problems list every one) and exits non-zero. */
export async function runCommand(fn: () => Promise<number | void>): Promise<void> {
  try {
    const code = await fn();
    if (typeof code === 'number') process.exitCode = code;
  } catch (error) {
    const code = error instanceof ArbiterError ? ` [${error.code}]` : '';
    process.stderr.write(`arbiter: ${errorMessage(error)}${code}\n`);
    process.exitCode = 1;
  }
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}
