export type ServiceName = 'kafka' | 'registry' | 'postgres';

export const SERVICE_NAMES: readonly ServiceName[] = ['kafka', 'registry', 'postgres'];

export interface StackEndpoints {
  kafkaBrokers: string[];
  schemaRegistryUrl: string;
  databaseUrl: string;
  /** Services this call started (empty when everything was already running). */
  started: ServiceName[];
}

export interface ServiceStatus {
  service: ServiceName;
  /** Where clients connect: the broker list, the registry URL or the database URL. */
  address: string;
  reachable: boolean;
  /** Why the service is not reachable, when it is not. */
  problem?: string;
  /** Set when `stack up` started it as a local process and it is still alive. */
  pid?: number;
  /** Set when `stack up` started it as a container. */
  containerId?: string;
  logFile: string;
}

export type StackLog = (line: string) => void;
