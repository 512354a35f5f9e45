import { createRequire, Module } from 'node:module';
import { groupMessagesPerPartition } from './kafkajs-grouping.ts';
import { decodeRecord } from './kafkajs-fetch.ts';
import { produceRequest } from './kafkajs-produce.ts';
import { frameRequest } from './kafkajs-request.ts';
import { scheduleCheckPendingRequests } from './kafkajs-request-queue.ts';

/**
 * kafkajs is no longer released, and four of its modules (two of the producer's, one of the
 * consumer's, the framing of every request) cost a worker measurably more than they need to (docs/BENCHMARKS.md, fourth and
 * fifth passes). Each replacement gives the bytes or result of the module it replaces
 * (test/unit/kafkajs-patches.test.ts compares them with kafkajs' own), and is put in Node's module
 * cache under kafkajs' file name before kafkajs loads. One method of a class is replaced on the
 * class itself (METHODS): the rest of the class stays kafkajs'.
 */
const PATCHES = {
  /** Linear grouping of a send's messages by partition (kafkajs' is quadratic). */
  grouping: { module: 'kafkajs/src/producer/groupMessagesPerPartition.js', exports: groupMessagesPerPartition },
  /** A Produce request written once into one buffer (kafkajs allocates ~10 buffers per record). */
  produce: { module: 'kafkajs/src/protocol/requests/produce/v3/request.js', exports: produceRequest },
  /** Every request framed in one buffer of its size, its body copied once (kafkajs: twice, into zero-filled powers of two). */
  request: { module: 'kafkajs/src/protocol/request.js', exports: frameRequest },
  /** A fetched record read with numbers, not BigInt Longs per varint byte and per offset. */
  fetchedRecord: { module: 'kafkajs/src/protocol/recordBatch/record/v0/decoder.js', exports: decodeRecord },
} as const;

const METHODS = {
  /** A connection's queue re-checks itself only when something waits (kafkajs: every 1 ms, forever). */
  requestQueue: { module: 'kafkajs/src/network/requestQueue/index.js', method: 'scheduleCheckPendingRequests', replacement: scheduleCheckPendingRequests },
} as const;

/** The only kafkajs release whose modules these replace; any other version is left as it is. */
const KAFKAJS_VERSION = '2.2.4';

export type PatchInstall = 'installed' | 'already-loaded' | 'other-version';
export type KafkajsPatches = Record<keyof typeof PATCHES | keyof typeof METHODS, PatchInstall>;

/**
 * Puts each replacement in Node's module cache under kafkajs' own file name, so kafkajs finds it
 * when it loads. Must run before anything imports kafkajs (the CLI's entry points import the module
 * that calls it first); too late, or another kafkajs version, changes nothing.
 */
export function installKafkajsPatches(): KafkajsPatches {
  const require = createRequire(import.meta.url);
  const version = (require('kafkajs/package.json') as { version: string }).version;
  const result = {} as KafkajsPatches;
  for (const [name, patch] of Object.entries(PATCHES) as Array<[keyof typeof PATCHES, (typeof PATCHES)[keyof typeof PATCHES]]>) {
    result[name] = version === KAFKAJS_VERSION ? install(require.cache, require.resolve(patch.module), patch.exports) : 'other-version';
  }
  // After the module replacements: loading a class's module must not load one of theirs first.
  for (const [name, patch] of Object.entries(METHODS) as Array<[keyof typeof METHODS, (typeof METHODS)[keyof typeof METHODS]]>) {
    if (version !== KAFKAJS_VERSION) {
      result[name] = 'other-version';
      continue;
    }
    const prototype = (require(patch.module) as { prototype: Record<string, unknown> }).prototype;
    prototype[patch.method] = patch.replacement;
    result[name] = 'installed';
  }
  return result;
}

function install(cache: NodeJS.Require['cache'], file: string, exports: unknown): PatchInstall {
  if (cache[file]) return 'already-loaded';
  const replacement = new Module(file);
  replacement.filename = file;
  replacement.exports = exports;
  replacement.loaded = true;
  cache[file] = replacement;
  return 'installed';
}
