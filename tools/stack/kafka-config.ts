import { randomUUID } from 'node:crypto';
import { KAFKA_VERSION } from './paths.ts';

export const KAFKA_PORT = 9092;
export const KAFKA_CONTROLLER_PORT = 9093;

/**
 * Maven resolves the broker's runtime classpath from this. kafka_2.13 brings slf4j-api
 * 1.7, which ignores slf4j-simple 2.x, so the 2.x API is pinned here to make it bind.
 */
export function renderKafkaPom(): string {
  const dependency = (group: string, artifact: string, version: string): string =>
    `    <dependency><groupId>${group}</groupId><artifactId>${artifact}</artifactId><version>${version}</version></dependency>`;
  return [
    '<project xmlns="http://maven.apache.org/POM/4.0.0">',
    '  <modelVersion>4.0.0</modelVersion>',
    '  <groupId>local.arbiter</groupId><artifactId>arbiter-kafka-runtime</artifactId><version>1</version>',
    '  <dependencies>',
    dependency('org.apache.kafka', 'kafka_2.13', KAFKA_VERSION),
    dependency('org.slf4j', 'slf4j-api', '2.0.17'),
    dependency('org.slf4j', 'slf4j-simple', '2.0.17'),
    '  </dependencies>',
    '</project>',
    '',
  ].join('\n');
}

/** A single KRaft node that is its own controller; internal topics cannot have 3 replicas here. */
export function renderServerProperties(
  dataDir: string,
  ports: { kafka: number; kafkaController: number } = { kafka: KAFKA_PORT, kafkaController: KAFKA_CONTROLLER_PORT },
): string {
  return renderProperties({
    ...singleNodeSettings(dataDir, ports.kafkaController),
    listeners: `PLAINTEXT://127.0.0.1:${ports.kafka},CONTROLLER://127.0.0.1:${ports.kafkaController}`,
    'advertised.listeners': `PLAINTEXT://127.0.0.1:${ports.kafka}`,
    'listener.security.protocol.map': 'PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT',
  });
}

/** What the plain and the secure broker share: one node, its own controller, internal topics of one replica. */
export function singleNodeSettings(dataDir: string, controllerPort: number): Record<string, string | number> {
  return {
    'process.roles': 'broker,controller',
    'node.id': 1,
    'controller.quorum.voters': `1@127.0.0.1:${controllerPort}`,
    'controller.listener.names': 'CONTROLLER',
    'log.dirs': dataDir,
    'num.partitions': 1,
    'auto.create.topics.enable': 'true',
    'offsets.topic.replication.factor': 1,
    // One partition each instead of 50: every group then shares one coordinator that is
    // loaded once at start-up, instead of each new group waiting for its own partition.
    'offsets.topic.num.partitions': 1,
    'transaction.state.log.num.partitions': 1,
    'transaction.state.log.replication.factor': 1,
    'transaction.state.log.min.isr': 1,
    'share.coordinator.state.topic.replication.factor': 1,
    'share.coordinator.state.topic.min.isr': 1,
    'group.initial.rebalance.delay.ms': 0,
  };
}

export function renderProperties(settings: Record<string, string | number>): string {
  return `${Object.entries(settings)
    .map(([key, value]) => `${key}=${value}`)
    .join('\n')}\n`;
}

/**
 * Same shape as `StorageTool random-uuid` (16 random bytes, base64url, never starting
 * with '-'), made here to save a JVM start.
 */
export function newKafkaClusterId(): string {
  for (;;) {
    const id = Buffer.from(randomUUID().replaceAll('-', ''), 'hex').toString('base64url');
    if (!id.startsWith('-')) return id;
  }
}

/**
 * G1 as Kafka's scripts set it up, plus 16 MB regions (Kafka's own tuning advice), for every broker
 * the project starts. In a small heap G1 picks 1 MB regions (512 MB for the local brokers, 1 GB in the
 * image), so every buffer of 512 KB or more (a produce request of a few thousand records) is a
 * humongous allocation, and each one started a concurrent GC cycle. In a 1,000,000-request bench
 * storm that was 666 of 694 collections and 60 % of the broker's CPU; with 16 MB regions, 2 of 52,
 * and the broker used 0.40× the CPU (docs/BENCHMARKS.md, issue 12 fifteenth pass).
 */
export const KAFKA_G1_OPTIONS = ['-XX:+UseG1GC', '-XX:MaxGCPauseMillis=20', '-XX:G1HeapRegionSize=16M'];

/**
 * The JVM settings of a broker run from the apache/kafka image (docker-compose.yml, `stack up` in
 * Docker mode), given as KAFKA_JVM_PERFORMANCE_OPTS, which its start script uses in place of its own
 * and its env-to-properties step leaves alone: the script's own settings, with our G1 options.
 */
export const KAFKA_IMAGE_JVM_PERFORMANCE_OPTS = [
  '-server',
  ...KAFKA_G1_OPTIONS,
  '-XX:InitiatingHeapOccupancyPercent=35',
  '-XX:+ExplicitGCInvokesConcurrent',
  '-Djava.awt.headless=true',
].join(' ');
