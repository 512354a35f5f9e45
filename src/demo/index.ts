export { runRaceLab, type RaceLabOptions, type RaceLabReport } from './race-lab.ts';
export { renderTable } from './report.ts';
export { freePort, workerEnv, type WorkerSite } from './worker-process.ts';
