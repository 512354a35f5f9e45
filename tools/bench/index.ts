export { runBench, type BenchOptions, type BenchPhase, type BenchResult } from './run.ts';
export { benchTable, renderMarkdown, verdictProblems } from './report.ts';
export { measureStartup, startupRows, STARTUP_COLUMNS, type StartupResult } from './startup.ts';
