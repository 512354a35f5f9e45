export { arrivalRules, loadConfig, ConfigSchema, ENV_VARS, DEFAULT_ENDPOINTS } from './config.ts';
export type { ArbiterConfig, ConfigInput, LoadConfigOptions } from './config.ts';
