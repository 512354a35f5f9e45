/**
 * kafkajs 2.2.4 decodes every fetched record with BigInt-backed Longs: one per byte of the
 * timestamp's varint, then the batch's first timestamp and first offset turned into Longs, added to
 * and printed back to strings; and it builds the headers object by spreading it once per header.
 * A worker reads one record per request. This reads the same fields into the same record object
 * with plain numbers wherever the values fit one exactly (every offset and millisecond timestamp
 * there is), and with kafkajs' own Longs beyond. installKafkajsPatches (kafkajs-patches.ts) puts it
 * in kafkajs' place before kafkajs loads; test/unit/kafkajs-patches.test.ts compares its records
 * with kafkajs' own.
 */

import { createRequire } from 'node:module';

/** kafkajs' Long, only for a timestamp delta beyond 49 bits (no real producer writes one). */
const Long = createRequire(import.meta.url)('kafkajs/src/utils/long.js') as { fromValue(value: string): LongValue };

/** The part of kafkajs' Decoder a record is read from: its buffer, its position, its Long reader. */
interface Decoder {
  buffer: Buffer;
  offset: number;
  readVarLong(): LongValue;
}

interface LongValue {
  add(other: LongValue | number): LongValue;
  toString(): string;
}

/** What kafkajs' record batch decoder passes for each record of the batch. */
export interface BatchContext {
  firstOffset: string;
  firstTimestamp: string;
  maxTimestamp?: string;
  magicByte?: number;
  isControlBatch?: boolean;
  timestampType?: number;
}

export interface FetchedRecord {
  magicByte: number | undefined;
  attributes: number;
  timestamp: string;
  offset: string;
  key: Buffer | null;
  value: Buffer | null;
  headers: Record<string, Buffer | null | Array<Buffer | null>>;
  isControlRecord: boolean;
  batchContext: BatchContext;
}

const LOG_APPEND_TIME = 1;
/** A varint of up to 7 bytes holds at most 49 bits: exact in a double, even zigzag-decoded. */
const SAFE_VARLONG_BYTES = 7;

/** kafkajs' readVarInt, to the same result on every input (its arithmetic included). */
function readVarInt(d: Decoder): number {
  let byte: number;
  let result = 0;
  let shift = 0;
  do {
    byte = d.buffer[d.offset++]!;
    result += (byte & 0x7f) << shift;
    shift += 7;
  } while (byte >= 0x80);
  return (result >>> 1) ^ -(result & 1);
}

/** A varlong as a number when it is short enough to be exact; otherwise null, the decoder untouched. */
function readShortVarLong(d: Decoder): number | null {
  let end = d.offset;
  while (d.buffer[end]! >= 0x80) end++;
  if (end - d.offset + 1 > SAFE_VARLONG_BYTES) return null;
  let result = 0;
  let scale = 1;
  for (let i = d.offset; i <= end; i++, scale *= 128) result += (d.buffer[i]! & 0x7f) * scale;
  d.offset = end + 1;
  return result % 2 === 0 ? result / 2 : -(result + 1) / 2;
}

function readBytes(d: Decoder): Buffer | null {
  const length = readVarInt(d);
  if (length === -1) return null;
  const bytes = d.buffer.subarray(d.offset, d.offset + length);
  d.offset += length;
  return bytes;
}

/**
 * `base` (a decimal string kafkajs printed from an int64) plus `delta`, printed the same way: with
 * numbers while the sum is exact in one, with BigInt beyond.
 */
function plus(base: string, delta: number): string {
  const sum = Number(base) + delta;
  return base.length < 16 && Number.isSafeInteger(sum) ? String(sum) : (BigInt(base) + BigInt(delta)).toString();
}

/** Same signature and same record as kafkajs' `protocol/recordBatch/record/v0/decoder` (2.2.4). */
export function decodeRecord(decoder: Decoder, batchContext: BatchContext = {} as BatchContext): FetchedRecord {
  const { firstOffset, firstTimestamp, magicByte, isControlBatch = false, timestampType, maxTimestamp } = batchContext;
  const attributes = decoder.buffer.readInt8(decoder.offset++);

  const shortDelta = readShortVarLong(decoder);
  // Beyond 49 bits: kafkajs' own reader and Long arithmetic, for the very same string.
  const longDelta = shortDelta === null ? decoder.readVarLong() : null;
  const timestamp =
    timestampType === LOG_APPEND_TIME && maxTimestamp
      ? maxTimestamp
      : longDelta
        ? Long.fromValue(firstTimestamp).add(longDelta).toString()
        : plus(firstTimestamp, shortDelta!);

  const offset = plus(firstOffset, readVarInt(decoder));

  const key = readBytes(decoder);
  const value = readBytes(decoder);
  const headers: FetchedRecord['headers'] = {};
  const count = readVarInt(decoder);
  for (let i = 0; i < count; i++) {
    const nameLength = readVarInt(decoder);
    // A null header key: kafkajs' readVarIntString gives null, which names the property "null".
    const name = nameLength === -1 ? 'null' : decoder.buffer.toString('utf8', decoder.offset, (decoder.offset += nameLength));
    const headerValue = readBytes(decoder);
    // kafkajs' rule: a repeated header becomes an array of its values, in order. (kafkajs also
    // reads a header named like an Object.prototype member, `toString`, as already there; here it
    // is a header like any other.)
    const existing = Object.prototype.hasOwnProperty.call(headers, name) ? headers[name] : undefined;
    const merged = existing === undefined ? headerValue : Array.isArray(existing) ? existing.concat([headerValue]) : [existing, headerValue];
    if (name === '__proto__') {
      // An own property, as kafkajs' object spread makes it, not the object's prototype.
      Object.defineProperty(headers, name, { value: merged, writable: true, enumerable: true, configurable: true });
    } else headers[name] = merged;
  }

  return { magicByte, attributes, timestamp, offset, key, value, headers, isControlRecord: isControlBatch, batchContext };
}
