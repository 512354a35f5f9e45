import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { errorMessage } from '../../../src/cli/index.ts';

interface SimOptions {
  port: string;
  host: string;
  fleet?: string;
  latencyScale: string;
}

export default function register(program: Command): void {
  program
    .command('sim')
    .description('Run the simulated fleet: an HTTP server standing in for infrastructure, recording incoherent outcomes')
    .option('--port <port>', 'port to listen on (0 picks a free one)', '8088')
    .option('--host <host>', 'address to bind', '127.0.0.1')
    .option('--fleet <file>', 'fleet spec as JSON (deployments, nodes, latencyMs, failureRate, restartSettleMs); default: a small demo fleet')
    .option('--latency-scale <n>', 'multiply every latency, e.g. 0.01 for tests', '1')
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

      const server = await startSimServer({ port, host: options.host, spec, latencyScale });
      console.log(`simulated fleet listening on ${server.url} (${server.fleet.size} resources, latency scale ${latencyScale})`);

      await new Promise<void>((resolve) => {
        process.once('SIGINT', resolve);
        process.once('SIGTERM', resolve);
      });
      await server.close();
    });
}
