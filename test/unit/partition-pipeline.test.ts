import type { KafkaMessage } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { INTAKE_CHUNK, PartitionPipeline, type PipelineSteps } from '../../src/worker/partition-pipeline.ts';

const messages = (from: number, n: number) => Array.from({ length: n }, (_, i) => ({ offset: String(from + i) }) as KafkaMessage);

function recorder(overrides: Partial<PipelineSteps> = {}) {
  const events: string[] = [];
  const steps: PipelineSteps = {
    take: async (m) => {
      events.push(`take ${m[0]!.offset}-${m[m.length - 1]!.offset}`);
      await new Promise((r) => setTimeout(r, 5));
      return { delivered: Promise.resolve() };
    },
    durable: async (last) => void events.push(`durable ${last}`),
    failed: (first) => void events.push(`failed ${first}`),
    closed: () => false,
    ...overrides,
  };
  return { events, steps };
}

describe('PartitionPipeline (a partition’s intake apart from the fetch loop)', () => {
  it('returns to the fetch loop at once; decides chunks one after another, each durable before the next; what queued meanwhile goes together', async () => {
    const { events, steps } = recorder();
    const pipeline = new PartitionPipeline(steps);
    const started = Date.now();
    await pipeline.push(messages(0, INTAKE_CHUNK + 10), '9999');
    await pipeline.push(messages(INTAKE_CHUNK + 10, 5), '9999');
    expect(Date.now() - started).toBeLessThan(5); // nothing waited for a chunk to be taken
    await pipeline.idle();
    // The second batch arrived while the first chunk was being taken: it joins the rest of the first batch.
    expect(events).toEqual([`take 0-${INTAKE_CHUNK - 1}`, `durable ${INTAKE_CHUNK - 1}`, `take ${INTAKE_CHUNK}-${INTAKE_CHUNK + 14}`, `durable ${INTAKE_CHUNK + 14}`]);
  });

  it('a chunk that fails: reported once with its first offset, everything queued behind it dropped', async () => {
    const { events, steps } = recorder({
      take: async (m) => {
        events.push(`take ${m[0]!.offset}`);
        if (m[0]!.offset === '10') throw new Error('bug');
        return { delivered: Promise.resolve() };
      },
    });
    const pipeline = new PartitionPipeline(steps);
    await pipeline.push(messages(0, 10), '99');
    await pipeline.push(messages(10, 10), '99');
    await pipeline.push(messages(20, 10), '99');
    await pipeline.idle();
    expect(events).toEqual(['take 0', 'durable 9', 'take 10', 'failed 10']);
    expect(pipeline.broken).toBe(true);
  });

  it('holds the fetch loop back once too much is queued, and lets it go as chunks are decided', async () => {
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const { steps } = recorder({ take: async () => (await held, { delivered: Promise.resolve() }) });
    const pipeline = new PartitionPipeline(steps);
    let returned = false;
    const pushing = pipeline.push(messages(0, 8_000), '9999').then(() => (returned = true));
    await new Promise((r) => setTimeout(r, 20));
    expect(returned).toBe(false);
    release();
    await pushing;
    expect(returned).toBe(true);
  });
});
