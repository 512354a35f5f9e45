import type { Command } from 'commander';
import type { ArbiterConfig } from '../config/index.ts';
import { ArbiterError, errorMessage } from '../contract/errors.ts';

// Commands load what they run (kafkajs, pg, zod, pino…) when they run, not when the program is
// built: `arbiter --help` and every agent's `arbiter submit` would otherwise pay for all of it.

/** `--config FILE` on any command that needs the configuration. */
export function withConfigOption(command: Command): Command {
  return command.option('-c, --config <file>', 'config file (YAML or JSON); env ARBITER_CONFIG');
}

export async function configFrom(options: { config?: string }): Promise<Readonly<ArbiterConfig>> {
  const { loadConfig } = await import('../config/index.ts');
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
