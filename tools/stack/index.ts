export { stackDown, stackStatus, stackUp } from './stack.ts';
export { SERVICE_LABELS } from './failure.ts';
export { redactPassword } from './postgres.ts';
export { APICURIO_VERSION, KAFKA_VERSION } from './paths.ts';
export { SERVICE_NAMES, type ServiceName, type ServiceStatus, type StackEndpoints, type StackLog } from './types.ts';
