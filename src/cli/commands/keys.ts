import type { Command } from 'commander';
import { printJson, runCommand } from '../shared.ts';

/** `arbiter keys generate --agent NAME`: an Ed25519 key pair for an agent, and the policy line that registers it. */
export default function register(program: Command): void {
  const keys = program.command('keys').description('signing keys for agent identity (docs/SECURITY.md)');
  keys
    .command('generate')
    .description('print a new Ed25519 key pair: the private key for the agent, the line for signatures.agentKeys')
    .requiredOption('--agent <id>', 'the agent the key is for')
    .option('--json', 'print JSON')
    .action((options: { agent: string; json?: boolean }) =>
      runCommand(async () => {
        const { generateSigningKeys } = await import('../../contract/signing.ts');
        const { privateKeyPem, publicKey } = generateSigningKeys();
        const policyLine = `${JSON.stringify(options.agent)}: ${publicKey}`;
        if (options.json) return printJson({ agent: options.agent, privateKeyPem, publicKey, policyLine });
        process.stdout.write(
          `# The agent's private key: give it to ${options.agent} only (SDK signingKey, or \`arbiter submit --key-file\`).\n${privateKeyPem}\n` +
            `# Its public key, for the workers' config under signatures.agentKeys:\n${policyLine}\n`,
        );
      }),
    );
}
