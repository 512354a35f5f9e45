import { Kafka, logLevel } from 'kafkajs';
import { AuditStore } from '../audit/index.ts';
import type { ArbiterConfig } from '../config/index.ts';
import { kafkaSecurityOptions, keyedPartitioner } from '../contract/kafka-client.ts';
import { Serde } from '../contract/serde.ts';
import { topicNames } from '../contract/topics.ts';
import { createPool } from '../db/index.ts';
import type { Logger } from '../logging/index.ts';
import { createMetrics, startMetricsServer } from '../metrics/index.ts';
import { ensureTopics, untilAvailable } from '../worker/index.ts';
import { PlanRelay } from './relay.ts';
import { PlanStore } from './store.ts';

/** `arbiter relay`: the plan relay on its own, for installations that run it apart from the workers. */
export async function startRelayProcess(config: Readonly<ArbiterConfig>, log: Logger): Promise<{ stop(): Promise<void> }> {
  const topics = topicNames(config.kafka.topicPrefix);
  const kafka = new Kafka({
    clientId: `${config.kafka.clientId}-relay-${config.worker.id}`,
    brokers: [...config.kafka.brokers],
    logLevel: logLevel.WARN,
    logCreator: () => (entry) => log.warn({ kafkajs: entry.namespace, ...entry.log }, String(entry.log.message)),
    retry: { initialRetryTime: 300, maxRetryTime: 5_000, retries: 30 },
    ...kafkaSecurityOptions(config),
  });
  const pool = createPool(config.databaseUrl, { max: 4, onError: (error) => log.warn({ err: error }, 'a database connection failed; the pool replaces it') });
  const producer = kafka.producer({ idempotent: false, maxInFlightRequests: 1, allowAutoTopicCreation: false, createPartitioner: keyedPartitioner });
  const metrics = createMetrics();
  const serde = new Serde(config.schemaRegistryUrl, topics, { registerWithinMs: 0 }); // retried below, with a log line
  const admin = kafka.admin();
  await admin.connect();
  await ensureTopics(admin, config).finally(() => admin.disconnect());
  // A registry still warming up is waited for (the relay registers the plan subjects too).
  await untilAvailable('the schema registry', async () => {
    await serde.register();
    await serde.registerPlans();
  }, log);
  await producer.connect();
  const relay = new PlanRelay({
    config,
    kafka,
    producer,
    serde,
    plans: new PlanStore(pool, (events) => events.forEach((e) => metrics.planEvents.inc({ type: e.type }))),
    audit: new AuditStore(pool, `relay:${config.worker.id}`),
    topics,
    metrics,
    log,
  });
  await relay.start();
  const server = config.worker.metricsPort > 0 ? await startMetricsServer(metrics, { live: () => true, ready: () => true }, config.worker.metricsPort, config.worker.metricsHost) : null;
  log.info({ group: `${config.kafka.groupId}.plans` }, 'plan relay running');
  return {
    async stop() {
      await relay.stop();
      await producer.disconnect().catch(() => {});
      await pool.end().catch(() => {});
      if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
