import type { Command } from 'commander';
import { configFrom, printJson, runCommand, withConfigOption } from '../../../src/cli/index.ts';

const int = (v: string) => Number.parseInt(v, 10);

export default function register(program: Command): void {
  withConfigOption(program.command('demo'))
    .description('the race lab: independent agents race over a simulated fleet, uncoordinated and through Arbiter')
    .option('--agents <n>', 'agents per scenario', int, 24)
    .option('--resources <n>', 'pods in the restart lab and nodes in the drain-then-terminate lab', int, 4)
    .option('--duration <seconds>', 'length of the incident duplicate storm', Number, 4)
    .option('--workers <n>', 'Arbiter worker processes', int, 2)
    .option('--connections <n>', 'SDK connections the agents share', int, 4)
    .option('--latency-scale <x>', 'multiply the fleet action latencies', Number, 1)
    .option('--scenario <name...>', 'run only these scenarios')
    .option('--out <dir>', 'report folder', 'reports')
    .option('--json', 'print the report as JSON on stdout')
    .action(
      (options: {
        config?: string;
        agents: number;
        resources: number;
        duration: number;
        workers: number;
        connections: number;
        latencyScale: number;
        scenario?: string[];
        out: string;
        json?: boolean;
      }) =>
        runCommand(async () => {
          const config = await configFrom(options);
          const { resultsTable, runRaceLab } = await import('../../race-lab/index.ts');
          const report = await runRaceLab(config, {
            agents: options.agents,
            resources: options.resources,
            durationSec: options.duration,
            workers: Math.max(1, options.workers),
            connections: Math.max(1, options.connections),
            latencyScale: options.latencyScale,
            only: options.scenario,
            outDir: options.out,
            log: (line) => process.stderr.write(`${line}\n`),
            progress: !options.json && process.stderr.isTTY === true,
          });
          if (options.json) printJson({ ok: report.ok, problems: report.problems, reportDir: report.reportDir, topicPrefix: report.topicPrefix, results: report.results });
          else {
            console.log(resultsTable(report.results));
            console.log(report.ok ? 'OK: Arbiter prevented every race; every request got exactly one final outcome.' : `PROBLEMS:\n- ${report.problems.join('\n- ')}`);
            console.log(`report: ${report.reportDir}/report.md (chart.svg, report.json)`);
          }
          return report.ok ? 0 : 1;
        }),
    );
}
