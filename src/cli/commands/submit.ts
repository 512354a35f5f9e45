import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { ArbiterError } from '../../contract/errors.ts';
import { kafkaSecurityOptions } from '../../contract/kafka-client.ts';
import { configFrom, printJson, runCommand, withConfigOption } from '../shared.ts';

function collectParam(value: string, previous: Record<string, string>): Record<string, string> {
  const eq = value.indexOf('=');
  if (eq <= 0) throw new ArbiterError('INVALID_REQUEST', `--param expects k=v, got '${value}'`);
  return { ...previous, [value.slice(0, eq)]: value.slice(eq + 1) };
}

export default function register(program: Command): void {
  withConfigOption(program.command('submit'))
    .description('submit a remediation request as an agent')
    .requiredOption('--agent <id>', 'agent identity')
    .requiredOption('--arn <arn>', 'resource ARN')
    .requiredOption('--action <name>', 'restart, rollback, hotfix, deploy, scale, drain, terminate')
    .option('--param <k=v>', 'action parameter (repeatable)', collectParam, {})
    .option('--expected-version <n>', 'the resource version this request is based on', (v) => Number.parseInt(v, 10))
    .option('--depends-on <id...>', 'request ids that must have executed first')
    .option('--deadline-seconds <n>', 'give up after this many seconds', (v) => Number(v))
    .option('--reason <text>', 'why (shown in the audit trail)')
    .option('--incident <id>', 'incident id')
    .option('--wait', 'wait for the final outcome')
    .option('--timeout <seconds>', 'how long --wait waits', (v) => Number(v), 60)
    .option('--key-file <file>', "the agent's Ed25519 private key (PEM) to sign with; env ARBITER_AGENT_KEY_FILE")
    .option('--json', 'print JSON')
    .action(
      (options: {
        config?: string;
        agent: string;
        arn: string;
        action: string;
        param: Record<string, string>;
        expectedVersion?: number;
        dependsOn?: string[];
        deadlineSeconds?: number;
        reason?: string;
        incident?: string;
        wait?: boolean;
        timeout: number;
        keyFile?: string;
        json?: boolean;
      }) =>
        runCommand(async () => {
          const config = await configFrom(options);
          const { ArbiterClient } = await import('../../agent-sdk/index.ts');
          const client = new ArbiterClient({
            brokers: [...config.kafka.brokers],
            schemaRegistryUrl: config.schemaRegistryUrl,
            topicPrefix: config.kafka.topicPrefix,
            scopeRules: [...config.scopeRules],
            ...kafkaSecurityOptions(config),
            ...signingKeyFrom(options.keyFile ?? process.env.ARBITER_AGENT_KEY_FILE),
          });
          try {
            await client.connect({ watchOutcomes: Boolean(options.wait) });
            const request = await client.submit({
              agentId: options.agent,
              resourceArn: options.arn,
              action: options.action,
              params: options.param,
              expectedVersion: options.expectedVersion ?? null,
              dependsOn: options.dependsOn ?? [],
              deadline: options.deadlineSeconds ? Date.now() + options.deadlineSeconds * 1000 : null,
              reason: options.reason ?? null,
              incidentId: options.incident ?? null,
            });
            if (!options.wait) {
              if (options.json) printJson({ requestId: request.requestId, scope: client.scopeOf(request.resourceArn), status: 'SUBMITTED' });
              else console.log(`submitted ${request.requestId} (scope ${client.scopeOf(request.resourceArn)})`);
              return 0;
            }
            try {
              const outcome = await client.awaitOutcome(request.requestId, {
                timeoutMs: options.timeout * 1000,
                onProgress: (o) => {
                  if (!options.json) console.error(`${o.status}: ${o.detail ?? ''}`);
                },
              });
              if (options.json) printJson(outcome);
              else console.log(`${outcome.requestId} ${outcome.status}${outcome.resourceVersion !== null ? ` v${outcome.resourceVersion}` : ''}${outcome.detail ? ` — ${outcome.detail}` : ''}`);
              return outcome.status === 'EXECUTED' || outcome.status === 'COALESCED' ? 0 : 3;
            } catch (error) {
              if (error instanceof ArbiterError && error.code === 'TIMEOUT') {
                if (options.json) printJson({ requestId: request.requestId, status: 'TIMEOUT', detail: error.message });
                else console.error(error.message);
                return 2;
              }
              throw error;
            }
          } finally {
            await client.close();
          }
        }),
    );
}

function signingKeyFrom(file: string | undefined): { signingKey?: string } {
  return file ? { signingKey: readFileSync(file, 'utf8') } : {};
}
