import { Kafka, logLevel, Partitioners, type Producer } from 'kafkajs';
import { buildRequest, type RemediationRequest } from '../../src/contract/request.ts';
import { Serde } from '../../src/contract/serde.ts';
import { topicNames } from '../../src/contract/topics.ts';
import { deploymentArn, podArn } from '../../tools/fleet/index.ts';
import { endpoints, startTestEnv, type TestEnv, type TestEnvOptions } from './harness.ts';

/**
 * A fleet for storms: `deployments` services of two replicas (one may be down at a time, so a
 * restart never waits for the budget), actions a hundredth of their real latency, and a plain
 * Kafka producer that sends requests the way any Confluent-compatible client would — including
 * records the SDK would never build.
 */
export interface StormEnv {
  env: TestEnv;
  /** The scope (deployment ARN) of the i-th service, wrapping around. */
  scope(i: number): string;
  /** Pod `replica` of the i-th service. */
  pod(i: number, replica?: number): string;
  /** A restart of the i-th service's pod, unique by its params (never coalesced with another). */
  restart(i: number, agentId?: string): RemediationRequest;
  /** Produces raw records, keyed as given. */
  send(records: Array<{ key: string; request: RemediationRequest }>): Promise<void>;
  stop(): Promise<void>;
}

export async function startStormEnv(deployments: number, options: Omit<TestEnvOptions, 'fleet' | 'latencyScale'> = {}): Promise<StormEnv> {
  const names = Array.from({ length: deployments }, (_, i) => `svc-${i}`);
  const env = await startTestEnv({
    workers: 2,
    ...options,
    latencyScale: 0.01,
    fleet: {
      deployments: names.map((name) => ({ namespace: 'storm', name, replicas: 2, minAvailable: 1, revision: 'v1' })),
      restartSettleMs: 0,
    },
  });
  const kafka = new Kafka({ clientId: `storm-${env.prefix}`, brokers: [endpoints.kafkaBrokers], logLevel: logLevel.NOTHING });
  const producer: Producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
  await producer.connect();
  const serde = new Serde(endpoints.schemaRegistryUrl, topicNames(env.prefix));
  const scope = (i: number) => deploymentArn('storm', names[i % deployments]!);
  const pod = (i: number, replica = 0) => podArn(scope(i), names[i % deployments]!, replica);
  let sent = 0;
  return {
    env,
    scope,
    pod,
    restart: (i, agentId = `agent-${i % 7}`) => buildRequest({ agentId, resourceArn: pod(i), action: 'restart', params: { n: String(sent++) } }),
    async send(records) {
      await producer.send({
        topic: topicNames(env.prefix).requests,
        acks: -1,
        messages: await Promise.all(records.map(async (r) => ({ key: r.key, value: await serde.encodeRequest(r.request) }))),
      });
    },
    async stop() {
      await producer.disconnect().catch(() => undefined);
      await env.stop();
    },
  };
}
