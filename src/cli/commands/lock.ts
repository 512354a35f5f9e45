import type { Command } from 'commander';
import type { ArbiterLocks } from '../../agent-sdk/index.ts';
import { configFrom, printJson, runCommand, withConfigOption } from '../shared.ts';

interface LockOptions {
  config?: string;
  arn?: string;
  agent: string;
  ttl: number;
  token?: number;
  json?: boolean;
  all?: boolean;
}

/** `arbiter lock acquire|renew|release|list`: the fenced leases, for agents acting directly. */
export default function register(program: Command): void {
  const lock = program.command('lock').description('fenced locks for agents that act on infrastructure directly');
  const common = (c: Command) =>
    withConfigOption(c)
      .option('--agent <id>', 'agent identity', process.env.USER ?? 'cli')
      .option('--ttl <seconds>', 'lease TTL in seconds', (v) => Number(v), 300)
      .option('--json', 'print JSON');

  const run = (fn: (locks: ArbiterLocks, o: LockOptions) => Promise<number | void>) => (options: LockOptions) =>
    runCommand(async () => {
      const { databaseUrl } = await configFrom(options);
      const { ArbiterLocks } = await import('../../agent-sdk/index.ts');
      const locks = new ArbiterLocks(databaseUrl, options.agent);
      try {
        return await fn(locks, options);
      } finally {
        await locks.close();
      }
    });

  common(lock.command('acquire'))
    .requiredOption('--arn <arn>', 'resource ARN')
    .action(
      run(async (locks, o) => {
        const result = await locks.acquire(o.arn!, o.ttl * 1000);
        if (o.json) printJson(result);
        else if (result.acquired) console.log(`acquired ${o.arn} token ${result.fencingToken} until ${result.expiresAt.toISOString()}`);
        else console.log(`held by ${result.holder.agentId ?? result.holder.owner} until ${result.holder.expiresAt.toISOString()}`);
        return result.acquired ? 0 : 4;
      }),
    );
  common(lock.command('renew'))
    .requiredOption('--arn <arn>', 'resource ARN')
    .requiredOption('--token <n>', 'fencing token from acquire', (v) => Number(v))
    .action(
      run(async (locks, o) => {
        const ok = await locks.renew(o.arn!, o.token!, o.ttl * 1000);
        if (o.json) printJson({ renewed: ok });
        else console.log(ok ? 'renewed' : 'not renewed: the lease expired or was taken over');
        return ok ? 0 : 4;
      }),
    );
  common(lock.command('release'))
    .requiredOption('--arn <arn>', 'resource ARN')
    .requiredOption('--token <n>', 'fencing token from acquire', (v) => Number(v))
    .action(
      run(async (locks, o) => {
        const ok = await locks.release(o.arn!, o.token!);
        if (o.json) printJson({ released: ok });
        else console.log(ok ? 'released' : 'not released: not held by you with that token');
        return ok ? 0 : 4;
      }),
    );
  common(lock.command('list'))
    .option('--arn <arn>', 'only this resource')
    .option('--all', 'include free locks (with their last fencing token)')
    .action(
      run(async (locks, o) => {
        const rows = await locks.list({ heldOnly: !o.all, resourceArn: o.arn });
        if (o.json) return printJson(rows);
        const cells = rows.map((r) => [r.resourceArn, r.agentId ?? r.owner ?? '-', r.fencingToken, r.expiresAt?.toISOString() ?? '-']);
        const { renderTable } = await import('../table.ts');
        console.log(renderTable(['resource', 'holder', 'token', 'expires'], cells));
      }),
    );
}
