import { describe, expect, it } from 'vitest';
import { parseJavaMajorVersion } from '../../tools/stack/java.ts';
import { newKafkaClusterId, renderKafkaPom, renderServerProperties } from '../../tools/stack/kafka-config.ts';
import { stackPaths } from '../../tools/stack/paths.ts';
import { redactPassword } from '../../tools/stack/postgres.ts';
import { maintenanceUrl } from '../../tools/support/index.ts';
import { registryDatabaseUrl, registryEnvironment, registryStorageEnvironment } from '../../tools/stack/registry.ts';
import { readStackSettings, splitHostPort } from '../../tools/stack/settings.ts';
import { extraJvmOptionsNote, KAFKA_JVM_OPTIONS, kafkaJvmArguments } from '../../tools/stack/kafka.ts';

function properties(text: string): Map<string, string> {
  return new Map(text.trim().split('\n').map((line) => line.split('=', 2) as [string, string]));
}

describe('parseJavaMajorVersion', () => {
  it.each([
    ['openjdk version "17.0.15" 2025-04-15\nOpenJDK Runtime Environment (build 17.0.15+6-Debian-1deb12u1)', 17],
    ['openjdk version "25.0.3" 2026-04-21 LTS', 25],
    ['openjdk version "21" 2023-09-19', 21],
    ['java version "1.8.0_292"', 8],
    ['openjdk version "26-ea" 2026-03-17', 26],
  ])('reads %j as Java %i', (output, major) => {
    expect(parseJavaMajorVersion(output)).toBe(major);
  });

  it('gives up on output that names no version', () => {
    expect(parseJavaMajorVersion('bash: java: command not found')).toBeUndefined();
  });
});

describe('renderServerProperties', () => {
  const rendered = properties(renderServerProperties('/cache/run/kafka/data'));

  it('sizes every internal topic for a single node (the 4.x defaults of 3 replicas cannot be met)', () => {
    for (const key of [
      'offsets.topic.replication.factor',
      'transaction.state.log.replication.factor',
      'transaction.state.log.min.isr',
      'share.coordinator.state.topic.replication.factor',
      'share.coordinator.state.topic.min.isr',
    ]) {
      expect(rendered.get(key), key).toBe('1');
    }
  });

  it('is its own controller, on loopback, clients on 9092 and the controller on 9093', () => {
    expect(rendered.get('process.roles')).toBe('broker,controller');
    expect(rendered.get('controller.quorum.voters')).toBe('1@127.0.0.1:9093');
    expect(rendered.get('listeners')).toBe('PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093');
    expect(rendered.get('advertised.listeners')).toBe('PLAINTEXT://127.0.0.1:9092');
    expect(rendered.get('group.initial.rebalance.delay.ms')).toBe('0');
    expect(rendered.get('log.dirs')).toBe('/cache/run/kafka/data');
  });
});

describe('renderKafkaPom', () => {
  it('pins slf4j-api 2.x beside slf4j-simple, or the broker logs nothing', () => {
    const pom = renderKafkaPom();
    expect(pom).toContain('<artifactId>kafka_2.13</artifactId><version>4.1.1</version>');
    expect(pom).toContain('<artifactId>slf4j-api</artifactId><version>2.0.17</version>');
    expect(pom).toContain('<artifactId>slf4j-simple</artifactId><version>2.0.17</version>');
  });
});

describe('newKafkaClusterId', () => {
  it('looks like StorageTool random-uuid: 22 base64url characters, never a leading dash', () => {
    const ids = Array.from({ length: 200 }, newKafkaClusterId);
    for (const id of ids) expect(id).toMatch(/^[A-Za-z0-9_][A-Za-z0-9_-]{21}$/);
    expect(new Set(ids).size).toBe(ids.length);
  });
});

describe('registryEnvironment', () => {
  it('binds both Quarkus ports to loopback, health away from the often-taken 9000', () => {
    expect(registryEnvironment()).toEqual({
      QUARKUS_HTTP_HOST: '127.0.0.1',
      QUARKUS_HTTP_PORT: '8081',
      QUARKUS_MANAGEMENT_HOST: '127.0.0.1',
      QUARKUS_MANAGEMENT_PORT: '9081',
    });
  });
});

describe('registry storage', () => {
  it('keeps schemas in PostgreSQL: its own database, a small pool', () => {
    expect(registryStorageEnvironment('postgres://postgres@127.0.0.1:5432/apicurio')).toMatchObject({
      APICURIO_STORAGE_KIND: 'sql',
      APICURIO_STORAGE_SQL_KIND: 'postgresql',
      APICURIO_DATASOURCE_URL: 'jdbc:postgresql://127.0.0.1:5432/apicurio',
      APICURIO_DATASOURCE_USERNAME: 'postgres',
      APICURIO_DATASOURCE_JDBC_MAX_SIZE: '10',
    });
    expect(registryStorageEnvironment('postgres://app:s%40cret@db:6543/reg').APICURIO_DATASOURCE_PASSWORD).toBe('s@cret');
  });

  it('names the database apicurio, or after the run directory of a private instance', () => {
    const server = 'postgres://postgres@127.0.0.1:5432/arbiter';
    expect(registryDatabaseUrl(server, { settings: readStackSettings({}) })).toBe('postgres://postgres@127.0.0.1:5432/apicurio');
    const privateOne = registryDatabaseUrl(server, { settings: readStackSettings({ ARBITER_STACK_RUN_DIR: '/tmp/a' }) });
    const another = registryDatabaseUrl(server, { settings: readStackSettings({ ARBITER_STACK_RUN_DIR: '/tmp/b' }) });
    expect(privateOne).toMatch(/\/apicurio_[0-9a-f]{10}$/);
    expect(privateOne).not.toBe(another);
  });
});

describe('readStackSettings', () => {
  it('defaults to the loopback services it may start itself', () => {
    const settings = readStackSettings({ HOME: '/home/dev' });
    expect(settings.kafkaBrokers).toEqual(['127.0.0.1:9092']);
    expect(settings.schemaRegistryUrl).toBe('http://127.0.0.1:8081/apis/ccompat/v7');
    expect(settings.databaseUrl).toBeUndefined();
    expect(settings.mayStartKafka).toBe(true);
    expect(settings.mayStartRegistry).toBe(true);
    expect(settings.mode).toBe('auto');
  });

  it('treats localhost as the default address, and anything else as not ours to start', () => {
    expect(readStackSettings({ KAFKA_BROKERS: 'localhost:9092' }).mayStartKafka).toBe(true);
    expect(readStackSettings({ KAFKA_BROKERS: 'kafka-1:9092, kafka-2:9092' })).toMatchObject({
      kafkaBrokers: ['kafka-1:9092', 'kafka-2:9092'],
      mayStartKafka: false,
    });
    expect(readStackSettings({ SCHEMA_REGISTRY_URL: 'http://localhost:8081/apis/ccompat/v7/' })).toMatchObject({
      schemaRegistryUrl: 'http://localhost:8081/apis/ccompat/v7',
      mayStartRegistry: true,
    });
    expect(readStackSettings({ SCHEMA_REGISTRY_URL: 'http://registry:8081' }).mayStartRegistry).toBe(false);
  });

  it('gives the local brokers ARBITER_KAFKA_JVM_OPTIONS after their defaults, so the operator\'s win', () => {
    expect(readStackSettings({}).kafkaJvmOptions).toEqual([]);
    // Regions large enough that a produce request's buffer is not a humongous allocation (fifteenth pass).
    expect(KAFKA_JVM_OPTIONS).toContain('-XX:G1HeapRegionSize=16M');
    expect(kafkaJvmArguments(readStackSettings({}))).toEqual(KAFKA_JVM_OPTIONS);
    const settings = readStackSettings({ ARBITER_KAFKA_JVM_OPTIONS: '  -Xmx1g   -XX:TieredStopAtLevel=1 ' });
    expect(settings.kafkaJvmOptions).toEqual(['-Xmx1g', '-XX:TieredStopAtLevel=1']);
    const args = kafkaJvmArguments(settings);
    expect(args.slice(-2)).toEqual(['-Xmx1g', '-XX:TieredStopAtLevel=1']);
    expect(args.indexOf('-Xmx1g')).toBeGreaterThan(args.indexOf('-Xmx512m'));
    // Both brokers' start lines (plain and secure) say which were added, and say nothing when none were.
    expect(extraJvmOptionsNote(settings)).toBe(', JVM options -Xmx1g -XX:TieredStopAtLevel=1');
    expect(extraJvmOptionsNote(readStackSettings({}))).toBe('');
  });

  it('puts downloads and run state under ARBITER_CACHE_DIR', () => {
    const { cacheDir } = readStackSettings({ ARBITER_CACHE_DIR: '/var/cache/arbiter' });
    const paths = stackPaths(cacheDir);
    expect(paths.kafkaLibs).toBe('/var/cache/arbiter/kafka-4.1.1/libs');
    expect(paths.apicurioHome).toBe('/var/cache/arbiter/apicurio-3.3.3');
    expect(paths.pidFile('kafka')).toBe('/var/cache/arbiter/run/kafka.pid');
    expect(paths.logFile('registry')).toBe('/var/cache/arbiter/run/registry.log');
  });

  it('starts a private instance on any loopback port only with its own run directory', () => {
    const shared = readStackSettings({ KAFKA_BROKERS: '127.0.0.1:19092', SCHEMA_REGISTRY_URL: 'http://127.0.0.1:18081/apis/ccompat/v7' });
    expect(shared).toMatchObject({ mayStartKafka: false, mayStartRegistry: false, privateInstance: false });
    const own = readStackSettings({
      ARBITER_CACHE_DIR: '/var/cache/arbiter',
      ARBITER_STACK_RUN_DIR: '/tmp/faults',
      KAFKA_BROKERS: '127.0.0.1:19092',
      SCHEMA_REGISTRY_URL: 'http://localhost:18081/apis/ccompat/v7',
    });
    expect(own).toMatchObject({ mayStartKafka: true, mayStartRegistry: true, privateInstance: true, runDir: '/tmp/faults' });
    expect(own.ports).toEqual({ kafka: 19092, kafkaController: 19093, registry: 18081, registryManagement: 19081, secureKafka: 9094, secureKafkaController: 9095 });
    expect(stackPaths(own.cacheDir, own.runDir).pidFile('kafka')).toBe('/tmp/faults/kafka.pid');
    expect(stackPaths(own.cacheDir, own.runDir).kafkaLibs).toBe('/var/cache/arbiter/kafka-4.1.1/libs');
    // Never a remote address, run directory or not.
    expect(readStackSettings({ ARBITER_STACK_RUN_DIR: '/tmp/faults', KAFKA_BROKERS: 'kafka-1:19092' }).mayStartKafka).toBe(false);
    expect(() => readStackSettings({ ARBITER_KAFKA_CONTROLLER_PORT: 'x' })).toThrow(/TCP port/);
  });

  it('renders a private broker on its own ports', () => {
    const rendered = properties(renderServerProperties('/d', { kafka: 19092, kafkaController: 19093 }));
    expect(rendered.get('listeners')).toBe('PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093');
    expect(rendered.get('controller.quorum.voters')).toBe('1@127.0.0.1:19093');
  });

  it('rejects an unknown ARBITER_STACK_MODE instead of guessing', () => {
    expect(() => readStackSettings({ ARBITER_STACK_MODE: 'podman' })).toThrow(/auto, local or containers/);
    expect(readStackSettings({ ARBITER_STACK_MODE: 'docker' }).mode).toBe('containers');
  });
});

describe('addresses', () => {
  it('splits host:port, IPv6 included', () => {
    expect(splitHostPort('127.0.0.1:9092')).toEqual({ host: '127.0.0.1', port: 9092 });
    expect(splitHostPort('[::1]:9092')).toEqual({ host: '::1', port: 9092 });
    expect(() => splitHostPort('kafka')).toThrow(/host:port/);
  });

  it('checks Postgres through the maintenance database, as the application database may not exist yet', () => {
    expect(maintenanceUrl('postgres://postgres@127.0.0.1:5432/arbiter')).toBe('postgres://postgres@127.0.0.1:5432/postgres');
    expect(maintenanceUrl('postgres://u:p@db:5432/arbiter?sslmode=require')).toBe(
      'postgres://u:p@db:5432/postgres?sslmode=require',
    );
  });

  it('never prints a database password', () => {
    expect(redactPassword('postgres://app:s3cret@db:5432/arbiter')).toBe('postgres://app:***@db:5432/arbiter');
    expect(redactPassword('postgres://postgres@127.0.0.1:5432/arbiter')).toBe('postgres://postgres@127.0.0.1:5432/arbiter');
  });
});
