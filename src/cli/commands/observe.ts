import type { Command } from 'commander';
import { ArbiterError } from '../../contract/errors.ts';
import { kafkaSecurityOptions } from '../../contract/kafka-client.ts';
import { configFrom, printJson, runCommand, withConfigOption } from '../shared.ts';

function collectState(value: string, previous: Record<string, string>): Record<string, string> {
  const eq = value.indexOf('=');
  if (eq <= 0) throw new ArbiterError('INVALID_REQUEST', `--state expects k=v, got '${value}'`);
  return { ...previous, [value.slice(0, eq)]: value.slice(eq + 1) };
}

/** `arbiter observe`: report what you see of a resource; the detector compares it with what Arbiter verified. */
export default function register(program: Command): void {
  withConfigOption(program.command('observe'))
    .description('publish an observation of a resource (for the inconsistency detector)')
    .requiredOption('--arn <arn>', 'resource ARN')
    .option('--version <n>', 'the version you observed', (v) => Number.parseInt(v, 10))
    .option('--state <k=v>', 'observed state (repeatable)', collectState, {})
    .option('--effective <requestId...>', 'request ids whose change you see in effect')
    .option('--source <who>', 'who observed (person:<id>, agent:<id>, executor:<name>)', `person:${process.env.USER ?? 'unknown'}`)
    .option('--json', 'print JSON')
    .action((options: { config?: string; arn: string; version?: number; state: Record<string, string>; effective?: string[]; source: string; json?: boolean }) =>
      runCommand(async () => {
        if (options.version !== undefined && !Number.isSafeInteger(options.version)) throw new ArbiterError('INVALID_REQUEST', '--version must be an integer');
        const config = await configFrom(options);
        const { ArbiterClient } = await import('../../agent-sdk/index.ts');
        const client = new ArbiterClient({ brokers: [...config.kafka.brokers], schemaRegistryUrl: config.schemaRegistryUrl, topicPrefix: config.kafka.topicPrefix, scopeRules: [...config.scopeRules], ...kafkaSecurityOptions(config) });
        try {
          const observation = await client.observe({
            resourceArn: options.arn,
            version: options.version ?? null,
            state: options.state,
            source: options.source,
            effectiveRequestIds: options.effective ?? null,
          });
          if (options.json) printJson(observation);
          else console.log(`observed ${observation.resourceArn} (${observation.observationId})`);
        } finally {
          await client.close();
        }
      }),
    );
}
