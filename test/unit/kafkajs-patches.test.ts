import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { decodeRecord, type BatchContext } from '../../src/contract/kafkajs-fetch.ts';
import { groupMessagesPerPartition } from '../../src/contract/kafkajs-grouping.ts';
import { frameRequest, type FramingArgs } from '../../src/contract/kafkajs-request.ts';
import { crc32C, encodeRecord, encodeRecordBatch, produceRequest, type BatchHeader, type Message, type ProduceArgs } from '../../src/contract/kafkajs-produce.ts';

const run = promisify(execFile);
const require = createRequire(import.meta.url);
const source = (path: string) => readFileSync(fileURLToPath(new URL(path, import.meta.url)), 'utf8');

/** kafkajs' own (quadratic) implementation, as shipped: what the replacement must match. */
const original = require('kafkajs/src/producer/groupMessagesPerPartition.js') as typeof groupMessagesPerPartition;
type RecordInput = Message & { offsetDelta?: number; timestampDelta?: number };
const originalRecord = require('kafkajs/src/protocol/recordBatch/record/v0/index.js') as (input: RecordInput) => { buffer: Buffer };
const { RecordBatch } = require('kafkajs/src/protocol/recordBatch/v0/index.js') as {
  RecordBatch: (args: BatchHeader & { records: unknown[]; lastOffsetDelta: number }) => Promise<{ buffer: Buffer }>;
};
const originalProduce = require('kafkajs/src/protocol/requests/produce/v3/request.js') as (request: ProduceArgs) => { encode(): Promise<{ buffer: Buffer }> };
const Long = require('kafkajs/src/utils/long.js') as { fromValue(value: number): { value: bigint } };
const decodeBatch = require('kafkajs/src/protocol/recordBatch/v0/decoder.js') as (decoder: unknown) => Promise<{
  records: Array<{ key: Buffer; value: Buffer; headers: Record<string, Buffer> }>;
}>;
const Decoder = require('kafkajs/src/protocol/decoder.js') as new (buffer: Buffer) => unknown;
const originalDecodeRecord = require('kafkajs/src/protocol/recordBatch/record/v0/decoder.js') as typeof decodeRecord;
const originalFrame = require('kafkajs/src/protocol/request.js') as (args: FramingArgs) => Promise<{ buffer: Buffer }>;
const KafkajsEncoder = require('kafkajs/src/protocol/encoder.js') as new () => { writeInt32(n: number): unknown; writeString(s: string): unknown; buffer: Buffer };

describe('the linear grouping of a send’s messages by partition', () => {
  it('gives what kafkajs’ own gives: same partitions, same messages, same order', () => {
    let seed = 7;
    const random = () => ((seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31);
    for (const [count, partitions] of [[0, 12], [1, 1], [1_500, 1], [1_500, 12], [777, 5]] as const) {
      const partitionMetadata = Array.from({ length: partitions }, (_, partitionId) => ({ partitionId }));
      const messages = Array.from({ length: count }, (_, i) => ({ key: `k${Math.floor(random() * partitions)}`, value: `v${i}` }));
      const partitioner = ({ message }: { message: { key: string } }) => Number(message.key.slice(1));
      const args = { topic: 't', partitionMetadata, messages, partitioner };
      expect(groupMessagesPerPartition(args)).toEqual(original(args));
    }
    const none = { topic: 't', partitionMetadata: [], messages: [{ key: 'k0' }], partitioner: () => 0 };
    expect(groupMessagesPerPartition(none)).toEqual(original(none));
  });

  it('comes first in every entry point, before any module can load kafkajs', () => {
    const firstImport = (file: string) => source(file).match(/^import .*$/m)?.[0];
    expect(firstImport('../../src/cli/main.ts')).toContain("'./kafkajs-setup.ts'");
    expect(firstImport('../../src/cli/index.ts')).toContain("'./kafkajs-setup.ts'");
    expect(firstImport('../../tools/cli/main.ts')).toContain("'../../src/cli/index.ts'");
    expect(firstImport('../../tools/bench/bare-loop-main.ts')).toContain("'../../src/cli/index.ts'");
  });
});

describe('the one-buffer encoding of a Produce request', () => {
  const big = 'é'.repeat(70_000);
  const records: RecordInput[] = [
    {},
    { key: 'scope-1', value: Buffer.from([0, 0, 0, 0, 7, 1, 2, 3]) },
    { key: null, value: null, offsetDelta: 1_499 },
    { key: Buffer.alloc(0), value: '', timestampDelta: 0 },
    { key: 'k', value: 'v', timestampDelta: 1_764_600_000_000 },
    { key: 'k', value: 'v', timestampDelta: -5 },
    { key: 'k', value: 'v', timestampDelta: Number.NaN },
    { key: 'k', value: 'v', timestampDelta: 2 ** 62 },
    { key: 'ключ', value: big, offsetDelta: 200 },
    { key: 's', value: 'x'.repeat(300), headers: { 'arbiter-request-id': 'req-1', 'arbiter-signature': Buffer.alloc(32, 9) } },
    { key: 's', value: 'x', headers: { multi: ['a', Buffer.from('b'), 'ç'], empty: '' } },
  ];

  it('computes the CRC32C natively here, with kafkajs’ result', () => {
    const own = require('kafkajs/src/protocol/recordBatch/crc32C/index.js') as (buffer: Buffer) => number;
    expect(crc32C.implementation).toBe('native');
    for (const size of [0, 1, 9, 4_096, 450_000]) {
      const buffer = Buffer.alloc(size, size % 251);
      expect(crc32C(buffer)).toBe(own(buffer));
    }
    expect(crc32C(Buffer.from('123456789'))).toBe(0xe3069283);
  });

  it('writes each record as kafkajs’ own record encoder does', () => {
    for (const input of records) expect(encodeRecord(input).equals(originalRecord(input).buffer)).toBe(true);
  });

  const messages = Array.from({ length: 1_500 }, (_, i) => ({
    key: `scope-${i % 7}`,
    value: Buffer.alloc(40 + (i % 90), i % 256),
    headers: { 'arbiter-request-id': `req-${i}` },
    offsetDelta: i,
    timestampDelta: i % 3,
  }));
  const header: BatchHeader = { firstTimestamp: 1_764_600_000_000, maxTimestamp: 1_764_600_000_002 };
  const theirBatch = (slice: RecordInput[], more: Partial<BatchHeader> = {}) =>
    RecordBatch({ ...header, ...more, records: slice.map(originalRecord), lastOffsetDelta: slice.length - 1 });

  it('makes the record batch kafkajs makes: sizes, offsets, CRC; transactional, idempotent, empty', async () => {
    const idempotent = { transactional: true, producerId: Long.fromValue(4_242), producerEpoch: 3, firstSequence: 77, partitionLeaderEpoch: 5, firstOffset: Long.fromValue(9) };
    for (const more of [{}, idempotent] as Array<Partial<BatchHeader>>) {
      for (const slice of [messages, messages.slice(0, 3), []]) {
        expect((await encodeRecordBatch({ ...header, ...more }, slice)).equals((await theirBatch(slice, more)).buffer)).toBe(true);
      }
    }
  });

  it('compresses with kafkajs’ codec, and kafkajs’ decoder reads the batch back', async () => {
    const ours = await encodeRecordBatch({ ...header, compression: 1 }, messages.slice(0, 50));
    const decoded = await decodeBatch(new Decoder(ours));
    expect(decoded.records.map((r) => [r.key.toString(), r.value.length, r.headers['arbiter-request-id']!.toString()])).toEqual(
      messages.slice(0, 50).map((m) => [m.key, m.value.length, m.headers['arbiter-request-id']]),
    );
  });

  /** Timestamps given, so the bytes depend on nothing but the request. */
  const stamped = (count: number, at: (i: number) => number | string | undefined) =>
    Array.from({ length: count }, (_, i) => ({ key: `k${i % 5}`, value: `value ${i}`, headers: { h: `x${i}` }, timestamp: at(i) }));
  const requests: ProduceArgs[] = [
    { acks: -1, timeout: 30_000, topicData: [{ topic: 'arbiter.outcomes', partitions: [{ partition: 3, messages: stamped(1_500, () => 1_764_600_000_000) }] }] },
    {
      acks: 1,
      timeout: 1_000,
      transactionalId: 'tx-1',
      producerId: 12,
      producerEpoch: 2,
      topicData: [
        { topic: 'a', partitions: [{ partition: 0, messages: stamped(3, (i) => 1_764_600_000_000 + i), firstSequence: 5 }, { partition: 7, messages: stamped(2, (i) => 1_764_600_000_100 - i) }] },
        // kafkajs sorts given timestamps as strings: 9 comes after 10.
        { topic: 'ünïcode', partitions: [{ partition: 1, messages: stamped(4, (i) => [10, 9, '11', 8][i]) }] },
      ],
    },
    { acks: 0, timeout: 5, topicData: [] },
  ];

  it('makes the Produce request kafkajs makes, byte for byte', async () => {
    for (const request of requests) {
      const ours = await produceRequest(request).encode();
      expect(ours.buffer.equals((await originalProduce(request).encode()).buffer)).toBe(true);
      expect(ours.size()).toBe(ours.buffer.length);
    }
    const wrapped = produceRequest(requests[0]!);
    expect([wrapped.apiKey, wrapped.apiVersion, wrapped.apiName, wrapped.expectResponse()]).toEqual([0, 3, 'Produce', true]);
    expect(produceRequest(requests[2]!).expectResponse()).toBe(false);
  });

  it('refuses a header value kafkajs cannot measure, with the header named', () => {
    expect(() => encodeRecord({ key: 'k', value: 'v', headers: { trace: null as unknown as string } })).toThrow(/header "trace" must be a string or a Buffer, not null/);
    expect(() => originalRecord({ key: 'k', value: 'v', headers: { trace: null as unknown as string } })).toThrow(TypeError);
  });

  it('refuses a fractional timestamp as kafkajs does', () => {
    expect(() => encodeRecord({ timestampDelta: 1.5 })).toThrow(RangeError);
    expect(() => originalRecord({ timestampDelta: 1.5 })).toThrow(RangeError);
  });
});

describe('the number-based decoding of a fetched record', () => {
  /** A record's body as the batch decoder hands it over: without its length prefix. */
  const body = (input: RecordInput) => {
    const bytes = encodeRecord(input);
    const decoder = new Decoder(bytes) as { readVarInt(): number; offset: number };
    decoder.readVarInt();
    return bytes.subarray(decoder.offset);
  };
  const records: RecordInput[] = [
    { key: 'scope-1', value: Buffer.from([0, 0, 0, 0, 7, 1, 2, 3]), offsetDelta: 3, timestampDelta: 2 },
    { key: null, value: null },
    { key: '', value: '', offsetDelta: 1_499, timestampDelta: -5 },
    { key: 'k', value: 'v', timestampDelta: 2 ** 40 },
    { key: 'k', value: 'v', timestampDelta: 2 ** 62 },
    { key: 'k', value: 'v', timestampDelta: -(2 ** 55) },
    { key: 'ключ', value: 'é'.repeat(300), offsetDelta: 200 },
    { key: 's', value: 'x', headers: { 'arbiter-request-id': 'req-1', 'arbiter-signature': Buffer.alloc(32, 9) } },
    { key: 's', value: 'x', headers: { multi: ['a', Buffer.from('b'), 'ç'], empty: '', __proto__x: 'y' } },
  ];
  const contexts: BatchContext[] = [
    { firstOffset: '0', firstTimestamp: '1764600000000', magicByte: 2, isControlBatch: false, timestampType: 0, maxTimestamp: '1764600000009' },
    { firstOffset: '9007199254740990', firstTimestamp: '1764600000000', magicByte: 2, timestampType: 0, maxTimestamp: '1' },
    { firstOffset: '9223372036854770000', firstTimestamp: '-1', magicByte: 2, isControlBatch: true, timestampType: 1, maxTimestamp: '1764600000009' },
    { firstOffset: '12', firstTimestamp: '9007199254740000', magicByte: 2, timestampType: 1, maxTimestamp: '' },
  ];

  it('reads every record as kafkajs’ own decoder does, in every kind of batch', () => {
    for (const context of contexts) {
      for (const input of records) {
        const theirs = originalDecodeRecord(new Decoder(body(input)) as never, context);
        const ours = decodeRecord(new Decoder(body(input)) as never, context);
        expect(ours).toEqual(theirs);
        expect(Object.keys(ours.headers)).toEqual(Object.keys(theirs.headers));
      }
    }
  });

  it('keeps a header named __proto__ as a header, and a repeated null value in the array', () => {
    const bytes = Buffer.concat([
      body({ key: 'k', value: 'v' }).subarray(0, -1),
      Buffer.from([6]), // three headers (zigzag)
      Buffer.from([18]), Buffer.from('__proto__'), Buffer.from([2]), Buffer.from('a'),
      Buffer.from([2]), Buffer.from('h'), Buffer.from([1]), // h: null
      Buffer.from([2]), Buffer.from('h'), Buffer.from([2]), Buffer.from('b'),
    ]);
    const ours = decodeRecord(new Decoder(bytes) as never, contexts[0]!);
    expect(Object.getPrototypeOf(ours.headers)).toBe(Object.prototype);
    expect(Object.getOwnPropertyDescriptor(ours.headers, '__proto__')?.value).toEqual(Buffer.from('a'));
    expect(ours.headers.h).toEqual([null, Buffer.from('b')]);
    // kafkajs itself reads __proto__ as already set (to Object.prototype): only `h` is compared.
    expect(ours.headers.h).toEqual(originalDecodeRecord(new Decoder(bytes) as never, contexts[0]!).headers.h);
  });
});

/** A produce request whose bytes depend on nothing but itself (the timestamps are given). */
const PRODUCE: ProduceArgs = {
  acks: -1,
  timeout: 1_000,
  topicData: [{ topic: 't', partitions: [{ partition: 0, messages: [1, 2, 3].map((i) => ({ key: `k${i}`, value: `v${i}`, headers: { h: 'x' }, timestamp: 1_764_600_000_000 + i })) }] }],
};

describe('the one-buffer framing of every request', () => {
  it('frames a request as kafkajs does, byte for byte: any client id, a body from either encoder', async () => {
    const kafkajsBody = new KafkajsEncoder();
    kafkajsBody.writeInt32(7);
    kafkajsBody.writeString('topic-ü');
    // kafkajs frames only bodies with its Encoder's shape (`buf`): its own, and the Produce replacement's.
    const raw = (buf: Buffer) => ({ buf, buffer: buf });
    const bodies = [raw(Buffer.alloc(0)), kafkajsBody, await produceRequest(PRODUCE).encode(), raw(Buffer.alloc(3_000_000, 7))];
    for (const clientId of ['arbiter', '', null, undefined, 'ç-client-名前']) {
      for (const body of bodies) {
        const args: FramingArgs = { correlationId: 2_147_483_000, clientId, request: { apiKey: 0, apiVersion: 7, encode: async () => body } };
        const ours = await frameRequest(args);
        expect(ours.buffer.equals((await originalFrame(args)).buffer)).toBe(true);
        expect(ours.size()).toBe(ours.buffer.length);
      }
    }
  });
});

describe('the replacements in a process that starts as the CLI does', () => {
  it('are what kafkajs loads, and a v7 Produce request (what kafkajs sends to Kafka 4) is ours', async () => {
    const script = `
      const { kafkajsPatches } = await import(${JSON.stringify(fileURLToPath(new URL('../../src/cli/kafkajs-setup.ts', import.meta.url)))});
      const { groupMessagesPerPartition } = await import(${JSON.stringify(fileURLToPath(new URL('../../src/contract/kafkajs-grouping.ts', import.meta.url)))});
      const { produceRequest } = await import(${JSON.stringify(fileURLToPath(new URL('../../src/contract/kafkajs-produce.ts', import.meta.url)))});
      await import('kafkajs');
      const { createRequire } = await import('node:module');
      const load = createRequire(${JSON.stringify(import.meta.url)});
      const grouping = load('kafkajs/src/producer/groupMessagesPerPartition.js') === groupMessagesPerPartition;
      const produce = load('kafkajs/src/protocol/requests/produce/v3/request.js') === produceRequest;
      const { frameRequest } = await import(${JSON.stringify(fileURLToPath(new URL('../../src/contract/kafkajs-request.ts', import.meta.url)))});
      const framing = load('kafkajs/src/protocol/request.js') === frameRequest;
      const { request: v7 } = load('kafkajs/src/protocol/requests/produce/index.js').protocol({ version: 7 })(${JSON.stringify(PRODUCE)});
      const encoded = await v7.encode();
      console.log(JSON.stringify({ kafkajsPatches, grouping, produce, framing, apiVersion: v7.apiVersion, bytes: encoded.buffer.toString('hex') }));
    `;
    const { stdout } = await run(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { timeout: 60_000 });
    expect(JSON.parse(stdout.trim().split('\n').pop()!)).toEqual({
      kafkajsPatches: { grouping: 'installed', produce: 'installed', request: 'installed', fetchedRecord: 'installed', requestQueue: 'installed' },
      grouping: true,
      produce: true,
      framing: true,
      apiVersion: 7,
      bytes: (await originalProduce(PRODUCE).encode()).buffer.toString('hex'),
    });
  }, 60_000);
});
