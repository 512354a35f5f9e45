export { createContext, stackDown, stackStatus, stackUp, type StackOptions } from './stack.ts';
export {
  pauseKafka,
  pauseService,
  restartKafka,
  restartRegistry,
  resumeKafka,
  resumeService,
  type ControllableService,
  type RestartResult,
} from './control.ts';
export { SERVICE_LABELS } from './failure.ts';
export { redactPassword } from './postgres.ts';
export { APICURIO_VERSION, KAFKA_VERSION } from './paths.ts';
export { SERVICE_NAMES, type ServiceName, type ServiceStatus, type StackEndpoints, type StackLog } from './types.ts';
