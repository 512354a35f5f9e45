export { createContext, secureKafkaDown, secureKafkaUp, stackDown, stackStatus, stackUp, type StackOptions } from './stack.ts';
export {
  CLIENT_USERS,
  secureClientConfig,
  secureClientEnv,
  type ClientUser,
  type SecureInstallation,
  type SecureKafka,
} from './secure-kafka.ts';
export { arbiterAcls, type AclGrant } from './secure-kafka-config.ts';
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
