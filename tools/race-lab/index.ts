export { runRaceLab, type RaceLabOptions, type RaceLabReport } from './race-lab.ts';
export { resultsTable } from './report.ts';
export type { RunResult } from './results.ts';
