export { launchNode, type LaunchOptions, type NodeChild } from './child-process.ts';
export { databaseUrlFor, dropDatabase, maintenanceUrl } from './databases.ts';
export { mergeConfig, type ConfigObject } from './merge-config.ts';
export { ARBITER_BIN, REPO_ROOT, nodeScript, siblingModule } from './paths.ts';
export {
  freePort,
  prepareWorkers,
  spawnWorker,
  startWorkers,
  workerEnv,
  workerNodeFlags,
  workerSemiSpace,
  type WorkerLaunch,
  type WorkerProcess,
  type WorkerSetup,
  type WorkerSite,
} from './worker-process.ts';
export { markdownTable } from './markdown-table.ts';
