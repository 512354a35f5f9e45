import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { errorMessage } from '../../../src/cli/index.ts';

interface SimOptions {
  port: string;
  host: string;
  fleet?: string;
  latencyScale: string;
  hmacKey?: string;
  hmacKeyFile?: string;
  databaseUrl?: string;
  lab?: boolean;
}

export default function register(program: Command): void {
  program
    .command('sim')
    .description('Run the simulated fleet: an HTTP server standing in for infrastructure, recording incoherent outcomes')
    .option('--port <port>', 'port to listen on (0 picks a free one)', '8088')
    .option('--host <host>', 'address to bind', '127.0.0.1')
    .option('--fleet <file>', 'fleet spec as JSON (deployments, nodes, latencyMs, failureRate, restartSettleMs); default: a small demo fleet')
    .option('--latency-scale <n>', 'multiply every latency, e.g. 0.01 for tests', '1')
    .option('--hmac-key <key>', 'require Arbiter\'s signature on every POST (401 otherwise); env ARBITER_EXECUTOR_HMAC_KEY (prefer it: a flag shows in ps). Without a key, unsigned calls are accepted')
    .option('--hmac-key-file <file>', 'the signing key from a file')
    .option('--database-url <url>', 'refuse fencing tokens no lease issued (checked against arbiter.locks in this database): 409 FENCED')
    .option('--lab', 'lab mode: serve POST /reset (a fresh fleet)')
    .action(async (options: SimOptions) => {
      const port = Number(options.port);
      const latencyScale = Number(options.latencyScale);
      if (!Number.isInteger(port) || port < 0 || port > 65_535) program.error(`--port must be an integer from 0 to 65535, got ${options.port}`);
      if (!Number.isFinite(latencyScale) || latencyScale < 0) program.error(`--latency-scale must be a non-negative number, got ${options.latencyScale}`);

      const { parseFleetSpec, startSimServer } = await import('../../fleet/index.ts');
      let spec;
      try {
        spec = parseFleetSpec(options.fleet ? JSON.parse(await readFile(options.fleet, 'utf8')) : {});
      } catch (error) {
        program.error(`cannot load fleet ${options.fleet}: ${errorMessage(error)}`);
      }

      let hmacKey = options.hmacKey ?? (process.env.ARBITER_EXECUTOR_HMAC_KEY || undefined);
      if (options.hmacKeyFile) {
        try {
          hmacKey = (await readFile(options.hmacKeyFile, 'utf8')).trim();
        } catch (error) {
          program.error(`cannot read --hmac-key-file ${options.hmacKeyFile}: ${(error as NodeJS.ErrnoException).code ?? 'error'}`);
        }
        if (!hmacKey) program.error(`--hmac-key-file ${options.hmacKeyFile} is empty`);
      }

      const server = await startSimServer({
        port,
        host: options.host,
        spec,
        latencyScale,
        ...(hmacKey ? { hmacKey } : {}),
        ...(options.databaseUrl ? { tokenCheck: { databaseUrl: options.databaseUrl } } : {}),
        lab: options.lab ?? false,
      });
      // The key is never printed; its fingerprint tells which one is in use.
      const { keyFingerprint } = await import('../../../src/executor/index.ts');
      const modes = [
        hmacKey ? `signed calls only (key ${keyFingerprint(hmacKey)})` : 'unsigned calls accepted',
        ...(options.databaseUrl ? ['fencing tokens checked against arbiter.locks'] : []),
        ...(options.lab ? ['lab mode: POST /reset served'] : []),
      ];
      console.log(`simulated fleet listening on ${server.url} (${server.fleet.size} resources, latency scale ${latencyScale}; ${modes.join('; ')})`);

      await new Promise<void>((resolve) => {
        process.once('SIGINT', resolve);
        process.once('SIGTERM', resolve);
      });
      await server.close();
    });
}
