import { join } from 'node:path';
import type { ServiceName } from './types.ts';

export const KAFKA_VERSION = '4.1.1';
export const APICURIO_VERSION = '3.3.3';

/** Downloads live beside the versions they hold, so a version bump never reuses stale files. */
export interface StackPaths {
  kafkaHome: string;
  kafkaLibs: string;
  apicurioHome: string;
  runDir: string;
  kafkaRunDir: string;
  /** The secure broker's data, certificates and credential files (`stack up --secure`). */
  secureKafkaRunDir: string;
  secureKafkaPidFile: string;
  secureKafkaLogFile: string;
  lockDir: string;
  pidFile(service: ServiceName): string;
  containerFile(service: ServiceName): string;
  logFile(service: ServiceName): string;
  /** The database URL the registry stores its schemas in, so a restart reuses it. */
  registryStorageFile: string;
}

/** `runDir` defaults to `<cacheDir>/run`; a private instance passes its own. */
export function stackPaths(cacheDir: string, runDir = join(cacheDir, 'run')): StackPaths {
  const kafkaHome = join(cacheDir, `kafka-${KAFKA_VERSION}`);
  return {
    kafkaHome,
    kafkaLibs: join(kafkaHome, 'libs'),
    apicurioHome: join(cacheDir, `apicurio-${APICURIO_VERSION}`),
    runDir,
    kafkaRunDir: join(runDir, 'kafka'),
    secureKafkaRunDir: join(runDir, 'secure-kafka'),
    secureKafkaPidFile: join(runDir, 'secure-kafka.pid'),
    secureKafkaLogFile: join(runDir, 'secure-kafka.log'),
    lockDir: join(runDir, 'stack.lock'),
    pidFile: (service) => join(runDir, `${service}.pid`),
    containerFile: (service) => join(runDir, `${service}.container`),
    logFile: (service) => join(runDir, `${service}.log`),
    registryStorageFile: join(runDir, 'registry.storage'),
  };
}
