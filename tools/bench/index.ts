export { runBench, FULL_DEFAULTS, QUICK_DEFAULTS, type BenchOptions, type BenchPhase, type BenchResult } from './run.ts';
export { benchTable, renderMarkdown } from './report.ts';
