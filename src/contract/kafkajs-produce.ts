import { createRequire } from 'node:module';

/**
 * kafkajs 2.2.4 encodes a produce request through its growable Encoder: per record, a copy of the
 * message (object spread), a zero-filled 512-byte buffer for the record and one for each header, a
 * fresh array and Buffer for every varint and BigInt-backed Longs for the timestamp; per batch, a
 * byte-at-a-time CRC32C and a copy at every level (records, batch, partition, topic) into buffers
 * that grow by doubling. A worker publishes one outcome per request, so that was ~15 % of a worker's
 * CPU in the full storm, and much of its garbage. Here each record is measured first, then written
 * once, straight into its batch's buffer of the exact size, and the CRC is computed natively: the
 * same bytes (Kafka's v2 record batch format in a Produce request v3..v7, whose bodies are the same).
 * installKafkajsPatches (kafkajs-patches.ts) puts produceRequest in kafkajs' place before kafkajs
 * loads; test/unit/kafkajs-patches.test.ts compares the bytes with kafkajs' own.
 */

const require = createRequire(import.meta.url);
const Long = require('kafkajs/src/utils/long.js') as { fromValue(value: LongLike): { value: bigint } };
const compressionCodecs = require('kafkajs/src/protocol/message/compression/index.js') as {
  lookupCodec(type: number): { compress(encoder: { buffer: Buffer }): Promise<Buffer> } | null;
  COMPRESSION_CODEC_MASK: number;
};
const PRODUCE_API_KEY = (require('kafkajs/src/protocol/requests/apiKeys.js') as { Produce: number }).Produce;

/**
 * CRC32C with the CPU's instruction (@node-rs/crc32, ~14× kafkajs' table loop on a 450 KB batch);
 * kafkajs' own where the native module has no build for the platform.
 */
export const crc32C: { (buffer: Buffer): number; implementation: 'native' | 'kafkajs' } = (() => {
  try {
    const { crc32c } = require('@node-rs/crc32') as { crc32c(input: Buffer, initial?: number | null): number };
    return Object.assign((buffer: Buffer) => crc32c(buffer), { implementation: 'native' as const });
  } catch {
    const own = require('kafkajs/src/protocol/recordBatch/crc32C/index.js') as (buffer: Buffer) => number;
    return Object.assign((buffer: Buffer) => own(buffer), { implementation: 'kafkajs' as const });
  }
})();

type LongLike = number | string | bigint | { value: bigint };
type Bytes = Buffer | string | null | undefined;

/** A message as kafkajs' producer passes it on. */
export interface Message {
  key?: Bytes;
  value?: Bytes;
  headers?: Record<string, Buffer | string | Array<Buffer | string>>;
  timestamp?: number | string | null;
}

/** A key, value or header value as kafkajs writes it: a Buffer as is, anything else as its string. */
function asBytes(value: unknown): Buffer | string | null {
  if (value == null) return null;
  return Buffer.isBuffer(value) ? value : String(value);
}

function byteLength(value: Buffer | string | null): number {
  if (value === null) return -1;
  return typeof value === 'string' ? Buffer.byteLength(value, 'utf8') : value.length;
}

const zigZag32 = (value: number) => (value << 1) ^ (value >> 31);

function sizeOfUVarInt(unsigned: number): number {
  let bytes = 1;
  while ((unsigned & 0xffffff80) !== 0) {
    bytes += 1;
    unsigned >>>= 7;
  }
  return bytes;
}

const sizeOfBytes = (length: number) => sizeOfUVarInt(zigZag32(length)) + Math.max(length, 0);

/**
 * The zigzag of a 64-bit value, as a number while it fits one exactly and a bigint beyond. kafkajs
 * reads a timestamp as `BigInt(value)`: NaN is 0, and a fraction throws, as there.
 */
function zigZag64(value: number): number | bigint {
  if (Number.isNaN(value)) return 0;
  if (Math.abs(value) < 2 ** 51 && Number.isInteger(value)) return value >= 0 ? value * 2 : -value * 2 - 1;
  const long = BigInt.asIntN(64, BigInt(value));
  return BigInt.asUintN(64, (long << 1n) ^ (long >> 63n));
}

function sizeOfUVarLong(unsigned: number | bigint): number {
  let bytes = 1;
  if (typeof unsigned === 'number') {
    for (; unsigned >= 128; unsigned = Math.floor(unsigned / 128)) bytes += 1;
  } else {
    for (; unsigned >= 128n; unsigned >>= 7n) bytes += 1;
  }
  return bytes;
}

const toInt64 = (value: LongLike) => BigInt.asIntN(64, Long.fromValue(value).value);

/** Writes into a buffer whose size was measured beforehand, so nothing grows or copies. */
class Writer {
  constructor(
    readonly buf: Buffer,
    public offset: number,
  ) {}

  uVarInt(unsigned: number): void {
    while ((unsigned & 0xffffff80) !== 0) {
      this.buf[this.offset++] = (unsigned & 0x7f) | 0x80;
      unsigned >>>= 7;
    }
    this.buf[this.offset++] = unsigned & 0x7f;
  }

  uVarLong(unsigned: number | bigint): void {
    if (typeof unsigned === 'number') {
      for (; unsigned >= 128; unsigned = Math.floor(unsigned / 128)) this.buf[this.offset++] = (unsigned % 128) | 0x80;
      this.buf[this.offset++] = unsigned;
    } else {
      for (; unsigned >= 128n; unsigned >>= 7n) this.buf[this.offset++] = Number(unsigned & 0x7fn) | 0x80;
      this.buf[this.offset++] = Number(unsigned);
    }
  }

  /** Varint-length-prefixed bytes; null is length -1 and nothing else. */
  varBytes(value: Buffer | string | null, length: number): void {
    this.uVarInt(zigZag32(length));
    this.raw(value, length);
  }

  /** int16-length-prefixed string; null is length -1. */
  string(value: string | null): void {
    const length = value === null ? -1 : Buffer.byteLength(value, 'utf8');
    this.offset = this.buf.writeInt16BE(length, this.offset);
    this.raw(value, length);
  }

  int32(value: number): void {
    this.offset = this.buf.writeInt32BE(value, this.offset);
  }

  private raw(value: Buffer | string | null, length: number): void {
    if (value === null) return;
    if (typeof value === 'string') this.buf.write(value, this.offset, length, 'utf8');
    else value.copy(this.buf, this.offset);
    this.offset += length;
  }
}

/**
 * A record measured, ready to be written. Record => Length:varint Attributes:int8
 * TimestampDelta:varlong OffsetDelta:varint Key:varint-bytes Value:varint-bytes
 * Headers:[Key:varint-string Value:varint-bytes]
 */
class PendingRecord {
  /** The record's bytes, its length prefix included. */
  readonly size: number;
  private readonly bodySize: number;
  private readonly timestamp: number | bigint;
  private readonly key: Buffer | string | null;
  private readonly keyLength: number;
  private readonly value: Buffer | string | null;
  private readonly valueLength: number;
  /** Header key, value, key length, value length, in turn: one flat array, not an object each. */
  private readonly headers: Array<string | Buffer | number> = [];

  constructor(
    message: Message,
    private readonly offsetDelta: number,
    timestampDelta: number,
  ) {
    this.key = asBytes(message.key);
    this.value = asBytes(message.value);
    this.keyLength = byteLength(this.key);
    this.valueLength = byteLength(this.value);
    this.timestamp = zigZag64(timestampDelta);
    let headerCount = 0;
    let headersSize = 0;
    const headers = message.headers ?? {};
    // kafkajs' order: each key once per value, an array value as several headers.
    for (const name of Object.keys(headers)) {
      const given = headers[name]!;
      const values = Array.isArray(given) ? given : [given];
      for (const one of values) {
        // kafkajs measures header values with Buffer.byteLength, which refuses anything else.
        if (typeof one !== 'string' && !Buffer.isBuffer(one)) {
          throw new TypeError(`header "${name}" must be a string or a Buffer, not ${one === null ? 'null' : typeof one}`);
        }
        const nameLength = Buffer.byteLength(name, 'utf8');
        const valueLength = byteLength(one);
        this.headers.push(name, one, nameLength, valueLength);
        headersSize += sizeOfBytes(nameLength) + sizeOfBytes(valueLength);
        headerCount += 1;
      }
    }
    this.bodySize =
      1 + sizeOfUVarLong(this.timestamp) + sizeOfUVarInt(zigZag32(offsetDelta)) + sizeOfBytes(this.keyLength) + sizeOfBytes(this.valueLength) + sizeOfUVarInt(zigZag32(headerCount)) + headersSize;
    this.size = sizeOfUVarInt(zigZag32(this.bodySize)) + this.bodySize;
  }

  /** Writes the record at `offset`; returns the offset after it. */
  writeTo(buf: Buffer, offset: number): number {
    const out = new Writer(buf, offset);
    out.uVarInt(zigZag32(this.bodySize));
    buf[out.offset++] = 0; // attributes: none are used per record
    out.uVarLong(this.timestamp);
    out.uVarInt(zigZag32(this.offsetDelta));
    out.varBytes(this.key, this.keyLength);
    out.varBytes(this.value, this.valueLength);
    out.uVarInt(zigZag32(this.headers.length / 4));
    for (let i = 0; i < this.headers.length; i += 4) {
      out.varBytes(this.headers[i] as string, this.headers[i + 2] as number);
      out.varBytes(this.headers[i + 1] as Buffer | string, this.headers[i + 3] as number);
    }
    if (out.offset !== offset + this.size) throw new Error(`record encoder wrote ${out.offset - offset} bytes of ${this.size}`);
    return out.offset;
  }
}

/** One record's bytes, as kafkajs' `protocol/recordBatch/record/v0` writes them (for tests). */
export function encodeRecord({ offsetDelta = 0, timestampDelta = 0, ...message }: Message & { offsetDelta?: number; timestampDelta?: number }): Buffer {
  const record = new PendingRecord(message, offsetDelta, timestampDelta);
  const buf = Buffer.allocUnsafe(record.size);
  record.writeTo(buf, 0);
  return buf;
}

/** The fields of a record batch's header, as kafkajs' RecordBatch takes them. */
export interface BatchHeader {
  compression?: number;
  firstOffset?: LongLike;
  firstTimestamp: number;
  maxTimestamp: number;
  partitionLeaderEpoch?: number;
  transactional?: boolean;
  producerId?: LongLike;
  producerEpoch?: number;
  firstSequence?: number;
}

const MAGIC_BYTE = 2;
const TRANSACTIONAL_MASK = 16;
/** attributes … firstSequence, then the record count: the start of what the CRC covers. */
const BODY_HEADER = 2 + 4 + 8 + 8 + 8 + 2 + 4 + 4;
/** firstOffset, length, partitionLeaderEpoch, magic, crc: what comes before the CRC'd body. */
const BATCH_PREFIX = 8 + 4 + 4 + 1 + 4;

/**
 * A record batch (Kafka's v2 format), each record written into it once, the CRC32C over its body.
 * A compressed batch's records are compressed with kafkajs' own codec (so a codec registered with
 * kafkajs, Snappy or LZ4, works as before).
 */
async function encodeBatch(header: BatchHeader, records: readonly PendingRecord[]): Promise<Buffer> {
  const codec = compressionCodecs.COMPRESSION_CODEC_MASK & (header.compression ?? 0);
  const compressed = codec === 0 ? null : await compress(header.compression!, records);
  const recordsSize = compressed ? compressed.length : sizeOfRecords(records);
  const size = BATCH_PREFIX + BODY_HEADER + recordsSize;
  const buf = Buffer.allocUnsafe(size);
  let offset = buf.writeBigInt64BE(toInt64(header.firstOffset ?? 0), 0);
  offset = buf.writeInt32BE(size - 12, offset); // the length of what follows firstOffset and itself
  offset = buf.writeInt32BE(header.partitionLeaderEpoch ?? 0, offset);
  offset = buf.writeInt8(MAGIC_BYTE, offset);
  offset += 4; // the CRC, once the body is written
  offset = buf.writeInt16BE(codec | (header.transactional ? TRANSACTIONAL_MASK : 0), offset);
  offset = buf.writeInt32BE(records.length - 1, offset); // lastOffsetDelta
  offset = buf.writeBigInt64BE(toInt64(header.firstTimestamp), offset);
  offset = buf.writeBigInt64BE(toInt64(header.maxTimestamp), offset);
  offset = buf.writeBigInt64BE(toInt64(header.producerId ?? -1), offset);
  offset = buf.writeInt16BE(header.producerEpoch ?? 0, offset);
  offset = buf.writeInt32BE(header.firstSequence ?? 0, offset);
  offset = buf.writeInt32BE(records.length, offset);
  offset = compressed ? offset + compressed.copy(buf, offset) : writeRecords(records, buf, offset);
  if (offset !== size) throw new Error(`record batch encoder wrote ${offset} bytes of ${size}`);
  buf.writeUInt32BE(crc32C(buf.subarray(BATCH_PREFIX)), BATCH_PREFIX - 4);
  return buf;
}

async function compress(compression: number, records: readonly PendingRecord[]): Promise<Buffer> {
  const codec = compressionCodecs.lookupCodec(compression);
  if (!codec) throw new Error(`no codec for compression type ${compression}`);
  const plain = Buffer.allocUnsafe(sizeOfRecords(records));
  writeRecords(records, plain, 0);
  return codec.compress({ buffer: plain });
}

const sizeOfRecords = (records: readonly PendingRecord[]) => records.reduce((sum, record) => sum + record.size, 0);

/** Writes the records one after the other from `offset`; returns the offset after the last. */
function writeRecords(records: readonly PendingRecord[], buf: Buffer, offset: number): number {
  for (const record of records) offset = record.writeTo(buf, offset);
  return offset;
}

/** A record batch of messages as kafkajs' RecordBatch writes it, given its records' deltas (for tests). */
export function encodeRecordBatch(header: BatchHeader, messages: ReadonlyArray<Message & { offsetDelta?: number; timestampDelta?: number }>): Promise<Buffer> {
  return encodeBatch(
    header,
    messages.map((m) => new PendingRecord(m, m.offsetDelta ?? 0, m.timestampDelta ?? 0)),
  );
}

/** kafkajs' timestamps of a batch: the messages' own, sorted as kafkajs sorts them (as strings), or now. */
function batchTimestamps(messages: readonly Message[], now: number): { first: number; max: number } {
  let given: Array<number | string> | null = null;
  for (const message of messages) if (message.timestamp != null) (given ??= []).push(message.timestamp);
  if (!given) return { first: now, max: now };
  given.sort();
  // kafkajs subtracts these as numbers and writes them as Longs: BigInt of a numeric string.
  return { first: given[0] as number, max: given[given.length - 1] as number };
}

/** What kafkajs' producer passes to its Produce request (`protocol/requests/produce/v3`). */
export interface ProduceArgs {
  acks: number;
  timeout: number;
  transactionalId?: string | null;
  producerId?: LongLike;
  producerEpoch?: number;
  compression?: number;
  topicData: ReadonlyArray<{
    topic: string;
    partitions: ReadonlyArray<{ partition: number; messages: readonly Message[]; firstSequence?: number }>;
  }>;
}

/**
 * Same signature as kafkajs' Produce request v3 (v4 to v7 are it with another version number): the
 * request's body in one buffer, each batch written once.
 */
export function produceRequest({ acks, timeout, transactionalId = null, producerId = -1, producerEpoch = 0, compression = 0, topicData }: ProduceArgs) {
  return {
    apiKey: PRODUCE_API_KEY,
    apiVersion: 3,
    apiName: 'Produce',
    expectResponse: () => acks !== 0,
    encode: async () => {
      const topics: Array<{ topic: string; batches: Array<{ partition: number; batch: Buffer }> }> = [];
      let size = 2 + (transactionalId === null ? 0 : Buffer.byteLength(transactionalId, 'utf8')) + 2 + 4 + 4;
      for (const { topic, partitions } of topicData) {
        const batches: Array<{ partition: number; batch: Buffer }> = [];
        for (const { partition, messages, firstSequence } of partitions) {
          const now = Date.now();
          const { first, max } = batchTimestamps(messages, now);
          const records = messages.map((m, i) => new PendingRecord(m, i, Number(m.timestamp || now) - first));
          const header = { compression, firstTimestamp: first, maxTimestamp: max, producerId, producerEpoch, firstSequence, transactional: !!transactionalId };
          const batch = await encodeBatch(header, records);
          batches.push({ partition, batch });
          size += 4 + 4 + batch.length;
        }
        topics.push({ topic, batches });
        size += 2 + Buffer.byteLength(topic, 'utf8') + 4;
      }
      const out = new Writer(Buffer.allocUnsafe(size), 0);
      out.string(transactionalId);
      out.offset = out.buf.writeInt16BE(acks, out.offset);
      out.int32(timeout);
      out.int32(topics.length);
      for (const { topic, batches } of topics) {
        out.string(topic);
        out.int32(batches.length);
        for (const { partition, batch } of batches) {
          out.int32(partition);
          out.int32(batch.length);
          out.offset += batch.copy(out.buf, out.offset);
        }
      }
      if (out.offset !== size) throw new Error(`produce request encoder wrote ${out.offset} bytes of ${size}`);
      return encoded(out.buf);
    },
  };
}

/** What kafkajs' request framing reads from an encoded body, as from its own Encoder. */
function encoded(buf: Buffer) {
  return { buf, buffer: buf, size: () => buf.length };
}
