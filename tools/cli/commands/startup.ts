import type { Command } from 'commander';
import { printJson, renderTable, runCommand } from '../../../src/cli/index.ts';

/** `arbiter startup`: what starting the CLI costs an agent (docs/BENCHMARKS.md, "CLI start-up"). */
export default function register(program: Command): void {
  program
    .command('startup')
    .description('time `arbiter --help` of the packed package (and of this checkout) against `node -e 0`, median of N runs each')
    .option('--runs <n>', 'runs of each command', (v) => Number.parseInt(v, 10), 10)
    .option('--json', 'print the result as JSON')
    .option('--markdown', 'print the table as Markdown')
    .action((options: { runs: number; json?: boolean; markdown?: boolean }) =>
      runCommand(async () => {
        if (!Number.isSafeInteger(options.runs) || options.runs < 1) throw new Error('--runs must be a positive integer');
        const { measureStartup, startupRows, STARTUP_COLUMNS } = await import('../../bench/index.ts');
        const { markdownTable } = await import('../../support/index.ts');
        const result = await measureStartup(options.runs, (line) => process.stderr.write(`[startup] ${line}\n`));
        if (options.json) return printJson(result);
        const rows = startupRows(result);
        process.stdout.write(`${options.markdown ? markdownTable(STARTUP_COLUMNS, rows) : renderTable(STARTUP_COLUMNS, rows)}\n`);
        process.stdout.write(`${result.runs} runs each, interleaved; ${result.machine}; node ${result.node}; ${result.date}\n`);
      }),
    );
}
