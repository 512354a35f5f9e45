import type { StackPaths } from './paths.ts';
import type { StackSettings } from './settings.ts';
import type { StackLog } from './types.ts';

/** What every service module needs: the settings read once, where files go, and progress output. */
export interface StackContext {
  settings: StackSettings;
  paths: StackPaths;
  log: StackLog;
}
