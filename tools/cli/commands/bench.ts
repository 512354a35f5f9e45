import { readFileSync, writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import type { BenchPhase, BenchResult } from '../../bench/index.ts';
import { printJson, runCommand } from '../../../src/cli/index.ts';

interface BenchCliOptions {
  quick?: boolean;
  json?: boolean;
  requests?: string;
  resources?: string;
  workers: string;
  partitions: string;
  agents: string;
  seed: string;
  probeRate: string;
  probeSeconds?: string;
  latencyScale: string;
  skip?: string;
  profile?: boolean;
  keep?: boolean;
  markdown?: string;
  timeoutMin?: string;
  workerConfig?: string;
  workerHeapMb?: string;
  fromJson?: string;
  preload?: boolean;
  baseline?: string;
  currentFirst?: boolean;
}

const PHASES: readonly BenchPhase[] = ['bare', 'pg', 'probe', 'micro'];
const FULL_DEFAULTS = { requests: 1_000_000, resources: 10_008 } as const;
/** A smoke run for CI (every phase and every check, no timing target): about 2–3 minutes with the stack up. */
const QUICK_DEFAULTS = { requests: 20_000, resources: 200, probeSeconds: 3, bareRuns: 1 } as const;

function positiveInt(name: string, raw: string): number {
  const value = Number(raw.replaceAll('_', ''));
  if (!Number.isSafeInteger(value) || value < 1) throw new Error(`--${name} must be a positive integer, got ${raw}`);
  return value;
}

export default function register(program: Command): void {
  program
    .command('bench')
    .description(
      'storm benchmark through real Kafka → workers → Postgres: throughput as a ratio of a bare kafkajs loop, ' +
        'Postgres insert ceiling, decision latency at 1,000 requests/s, lag, memory, execution check',
    )
    .option(
      '--quick',
      `smoke run (CI): ${QUICK_DEFAULTS.requests.toLocaleString('en-US')} requests over ${QUICK_DEFAULTS.resources} resources, ` +
        `${QUICK_DEFAULTS.probeSeconds} s probes, one bare-loop run; every phase and check, no timing target`,
    )
    .option('--baseline <git-ref>', "also run that commit's worker (built once in a cached git worktree) on the same storm, broker and server, and compare")
    .option('--current-first', 'with --baseline: run this checkout before the baseline (the arm run second pays ~10-20 % more CPU per unit of work here; compare one run in each order)')
    .option('--json', 'print the full result as JSON instead of a table')
    .option('--requests <n>', `requests in the storm (default ${FULL_DEFAULTS.requests.toLocaleString('en-US')})`)
    .option('--resources <n>', `pods the storm targets, rounded up to deployments of 9 (default ${FULL_DEFAULTS.resources.toLocaleString('en-US')})`)
    .option('--workers <n>', 'worker processes (and bare-loop processes, and Postgres connections for the ceiling)', '2')
    .option('--partitions <n>', 'partitions of the requests topic', '12')
    .option('--agents <n>', 'distinct agents sending the duplicates', '100')
    .option('--seed <n>', 'seed of the storm order', '42')
    .option('--probe-rate <n>', 'requests/s of the latency probe', '1000')
    .option('--probe-seconds <n>', 'length of the latency probe (default 10, quick 3)')
    .option('--latency-scale <x>', 'multiplies the simulated fleet action latencies (restart 300 ms)', '0.001')
    .option('--skip <phases>', `comma-separated phases to leave out: ${PHASES.join(', ')}`)
    .option('--preload', 'load the whole storm before starting the workers (they join, and rebalance, while it waits)')
    .option('--profile', 'run the workers under node --cpu-prof and summarise where their CPU went')
    .option('--keep', 'keep the topics, databases and scratch directory')
    .option('--markdown <file>', 'also write the results as Markdown (for docs/BENCHMARKS.md)')
    .option('--worker-config <json>', 'worker config merged over the bench\'s (e.g. \'{"kafka":{"partitionsConsumedConcurrently":6}}\')')
    .option('--worker-heap-mb <n>', 'run every worker (both builds) with node --max-old-space-size=<n>, as a container memory limit does (Helm sets it)')
    .option('--from-json <file>', 'render a result saved with --json (table, or --markdown) instead of running')
    .option('--timeout-min <n>', 'give up on a phase after this many minutes (default 10 quick, 40 full)')
    .action((options: BenchCliOptions) =>
      runCommand(async () => {
        const { benchTable, renderMarkdown, runBench, verdictProblems } = await import('../../bench/index.ts');
        if (options.fromJson) {
          const saved = JSON.parse(readFileSync(options.fromJson, 'utf8')) as BenchResult;
          if (options.markdown) writeFileSync(options.markdown, renderMarkdown(saved));
          process.stdout.write(benchTable(saved));
          return 0;
        }
        const defaults = options.quick ? QUICK_DEFAULTS : FULL_DEFAULTS;
        const skip = new Set<BenchPhase>();
        for (const phase of (options.skip ?? '').split(',').map((s) => s.trim()).filter(Boolean)) {
          if (!PHASES.includes(phase as BenchPhase)) throw new Error(`--skip: unknown phase ${phase} (known: ${PHASES.join(', ')})`);
          skip.add(phase as BenchPhase);
        }
        let workerConfig: Record<string, unknown> = {};
        try {
          workerConfig = options.workerConfig ? (JSON.parse(options.workerConfig) as Record<string, unknown>) : {};
        } catch (error) {
          throw new Error(`--worker-config is not JSON: ${(error as Error).message}`);
        }
        const latencyScale = Number(options.latencyScale);
        if (!Number.isFinite(latencyScale) || latencyScale < 0) throw new Error(`--latency-scale must be a non-negative number`);
        if (options.currentFirst && !options.baseline) throw new Error('--current-first needs --baseline <git-ref>');
        const result = await runBench(
          {
            quick: options.quick === true,
            requests: options.requests ? positiveInt('requests', options.requests) : defaults.requests,
            resources: options.resources ? positiveInt('resources', options.resources) : defaults.resources,
            workers: positiveInt('workers', options.workers),
            partitions: positiveInt('partitions', options.partitions),
            agents: positiveInt('agents', options.agents),
            seed: positiveInt('seed', options.seed),
            probeRate: positiveInt('probe-rate', options.probeRate),
            probeSeconds: options.probeSeconds ? positiveInt('probe-seconds', options.probeSeconds) : options.quick ? QUICK_DEFAULTS.probeSeconds : 10,
            ...(options.quick ? { bareRuns: QUICK_DEFAULTS.bareRuns } : {}),
            baseline: options.baseline ?? null,
            ...(options.currentFirst ? { currentFirst: true } : {}),
            probeResources: 100,
            latencyScale,
            skip,
            profile: options.profile === true,
            keep: options.keep === true,
            preload: options.preload === true,
            workerConfig,
            ...(options.workerHeapMb ? { workerHeapMb: positiveInt('worker-heap-mb', options.workerHeapMb) } : {}),
            timeoutMinutes: options.timeoutMin ? positiveInt('timeout-min', options.timeoutMin) : options.quick ? 10 : 40,
          },
          ['node', 'bin/arbiter.js', ...process.argv.slice(2)],
        );
        if (options.markdown) writeFileSync(options.markdown, renderMarkdown(result));
        if (options.json) printJson(result);
        else process.stdout.write(benchTable(result));
        for (const problem of verdictProblems(result)) process.stderr.write(`arbiter bench: FAILED: ${problem}\n`);
        return result.verdict.ok ? 0 : 1;
      }),
    );
}
