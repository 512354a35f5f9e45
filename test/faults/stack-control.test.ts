import { Kafka, logLevel } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { buildRequest } from '../../src/contract/request.ts';
import { Serde } from '../../src/contract/serde.ts';
import { topicNames } from '../../src/contract/topics.ts';
import { podArn, deploymentArn } from '../../tools/fleet/index.ts';
import { restartKafka, restartRegistry } from '../../tools/stack/index.ts';

/**
 * The fault tests' tools, checked on their own: a broker restart keeps what a real broker keeps,
 * and a registry restart keeps every schema id (Apicurio on its SQL storage).
 */

const brokers = [process.env.KAFKA_BROKERS!];
const registryUrl = process.env.SCHEMA_REGISTRY_URL!;

describe('the private stack of the fault tests', () => {
  it('runs on its own ports, never the shared defaults', () => {
    expect(brokers).not.toEqual(['127.0.0.1:9092']);
    expect(registryUrl).not.toBe('http://127.0.0.1:8081/apis/ccompat/v7');
    expect(process.env.ARBITER_STACK_RUN_DIR).toBeTruthy();
  });

  it('restarts Kafka on its data: topics, records and committed offsets survive', async () => {
    const kafka = new Kafka({ clientId: 'restart-check', brokers, logLevel: logLevel.NOTHING });
    const topic = `keep-${Date.now()}`;
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic, numPartitions: 2 }], waitForLeaders: true });
    const producer = kafka.producer();
    await producer.connect();
    await producer.send({ topic, acks: -1, messages: ['a', 'b', 'c'].map((value) => ({ value, partition: 0 })) });
    await producer.disconnect();
    await admin.setOffsets({ groupId: `${topic}-group`, topic, partitions: [{ partition: 0, offset: '2' }] });
    await admin.disconnect();

    const restart = await restartKafka({ keepData: true });
    console.log(`kafka restart: stopped in ${restart.stopMs} ms, healthy ${restart.startMs} ms after the new start`);

    const after = kafka.admin();
    await after.connect();
    try {
      expect(await after.listTopics()).toContain(topic);
      expect((await after.fetchTopicOffsets(topic)).find((p) => p.partition === 0)?.high).toBe('3');
      const [committed] = await after.fetchOffsets({ groupId: `${topic}-group`, topics: [topic] });
      expect(committed?.partitions.find((p) => p.partition === 0)?.offset).toBe('2');
    } finally {
      await after.disconnect();
    }
  });

  it('restarts the registry on its SQL storage: a record framed with an old schema id still decodes', async () => {
    const topics = topicNames(`restart-${Date.now()}`);
    const request = buildRequest({
      agentId: 'registry-check',
      resourceArn: podArn(deploymentArn('ns', 'svc'), 'svc', 0),
      action: 'restart',
      params: {},
    });
    const before = new Serde(registryUrl, topics);
    const bytes = await before.encodeRequest(request);
    const schemaId = bytes.readInt32BE(1);

    const restart = await restartRegistry();
    console.log(`registry restart: stopped in ${restart.stopMs} ms, healthy ${restart.startMs} ms after the new start`);

    // A fresh Serde has no cache: the id must be resolved by the restarted registry.
    const response = await fetch(`${registryUrl}/schemas/ids/${schemaId}`);
    expect(response.status).toBe(200);
    expect(await new Serde(registryUrl, topics).decodeRequest(bytes)).toEqual(request);
  });
});
