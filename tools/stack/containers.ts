// The Docker path: used only when a Docker engine answers. Same images, ports and
// addresses as the local processes, so nothing downstream can tell the difference.
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { promisify } from 'node:util';
import type { StackContext } from './context.ts';
import { KAFKA_IMAGE_JVM_PERFORMANCE_OPTS } from './kafka-config.ts';
import type { ServiceName } from './types.ts';

const execFileAsync = promisify(execFile);

export async function dockerEngineAvailable(): Promise<boolean> {
  try {
    await execFileAsync('docker', ['info'], { timeout: 10_000 });
    return true;
  } catch {
    return false;
  }
}

interface ContainerSpec {
  image: string;
  ports: Array<{ container: number; host: number }>;
  environment: Record<string, string>;
}

const CONTAINERS: Record<ServiceName, ContainerSpec> = {
  kafka: {
    image: 'apache/kafka:4.1.1',
    ports: [{ container: 9092, host: 9092 }],
    environment: {
      KAFKA_NODE_ID: '1',
      KAFKA_PROCESS_ROLES: 'broker,controller',
      KAFKA_LISTENERS: 'PLAINTEXT://:9092,CONTROLLER://:9093',
      // Clients on the host reach the published port, so that is what the broker advertises.
      KAFKA_ADVERTISED_LISTENERS: 'PLAINTEXT://127.0.0.1:9092',
      KAFKA_LISTENER_SECURITY_PROTOCOL_MAP: 'PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT',
      KAFKA_CONTROLLER_LISTENER_NAMES: 'CONTROLLER',
      KAFKA_CONTROLLER_QUORUM_VOTERS: '1@localhost:9093',
      KAFKA_NUM_PARTITIONS: '1',
      KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR: '1',
      KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR: '1',
      KAFKA_TRANSACTION_STATE_LOG_MIN_ISR: '1',
      KAFKA_SHARE_COORDINATOR_STATE_TOPIC_REPLICATION_FACTOR: '1',
      KAFKA_SHARE_COORDINATOR_STATE_TOPIC_MIN_ISR: '1',
      KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS: '0',
      KAFKA_JVM_PERFORMANCE_OPTS: KAFKA_IMAGE_JVM_PERFORMANCE_OPTS,
    },
  },
  registry: {
    image: 'apicurio/apicurio-registry:3.3.3',
    ports: [{ container: 8080, host: 8081 }],
    environment: {},
  },
  postgres: {
    image: 'postgres:16',
    ports: [{ container: 5432, host: 5432 }],
    environment: { POSTGRES_HOST_AUTH_METHOD: 'trust' },
  },
};

/** Starts the service's container on the fixed host ports and records its id for `stack down`. */
export async function startContainer(
  service: ServiceName,
  { paths, log }: StackContext,
  extraEnvironment: Record<string, string> = {},
): Promise<string> {
  // Ryuk would remove the containers as soon as `stack up` exits; `stack down` removes them instead.
  process.env.TESTCONTAINERS_RYUK_DISABLED = 'true';
  // A dev dependency: production code never reaches this import.
  const { GenericContainer } = await import('testcontainers');
  const spec = CONTAINERS[service];
  const name = `arbiter-stack-${service}`;
  log(`${service}: starting container ${name} from ${spec.image}`);
  // A container left behind by an interrupted run would hold the name and the ports.
  await execFileAsync('docker', ['rm', '-f', name], { timeout: 60_000 }).catch(() => undefined);
  const container = await new GenericContainer(spec.image)
    .withName(name)
    .withExposedPorts(...spec.ports)
    .withEnvironment({ ...spec.environment, ...extraEnvironment })
    // The registry reaches PostgreSQL on the host's published port.
    .withExtraHosts([{ host: 'host.docker.internal', ipAddress: 'host-gateway' }])
    .start();
  writeFileSync(paths.containerFile(service), `${container.getId()}\n`);
  return container.getId();
}

export function recordedContainer(containerFile: string): string | undefined {
  return existsSync(containerFile) ? readFileSync(containerFile, 'utf8').trim() || undefined : undefined;
}

export async function removeContainer(containerFile: string): Promise<string | undefined> {
  const id = recordedContainer(containerFile);
  if (id !== undefined) await execFileAsync('docker', ['rm', '-f', id], { timeout: 60_000 }).catch(() => undefined);
  rmSync(containerFile, { force: true });
  return id;
}
