import { createRequire, Module } from 'node:module';

/**
 * kafkajs 2.2.4 groups a send's messages by partition with `[...current, message]` per message:
 * quadratic in the messages per partition, and a fresh array each time. A worker sends a chunk's
 * answers (up to 1,500) in one call, most to one partition: ~0.8 µs per message and ~4 KB of
 * garbage per answer. The fix is upstream (tulios/kafkajs#1576) but kafkajs is no longer released,
 * so the CLI puts this linear grouping in its place before kafkajs loads (installLinearGrouping).
 * Same result: an object keyed by partition, each array in the order the messages came.
 */
export function groupMessagesPerPartition<M>({
  topic,
  partitionMetadata,
  messages,
  partitioner,
}: {
  topic: string;
  partitionMetadata: readonly unknown[];
  messages: readonly M[];
  partitioner: (args: { topic: string; partitionMetadata: readonly unknown[]; message: M }) => number;
}): Record<number, M[]> {
  if (partitionMetadata.length === 0) return {};
  const result: Record<number, M[]> = {};
  for (const message of messages) (result[partitioner({ topic, partitionMetadata, message })] ??= []).push(message);
  return result;
}

/** The only kafkajs release whose module this replaces; any other version is left as it is. */
const KAFKAJS_VERSION = '2.2.4';
const MODULE = 'kafkajs/src/producer/groupMessagesPerPartition.js';

export type GroupingInstall = 'installed' | 'already-loaded' | 'other-version';

/**
 * Puts groupMessagesPerPartition in Node's module cache under kafkajs' own file name, so kafkajs'
 * producer finds it when it loads. Must run before anything imports kafkajs (the CLI's entry points
 * import the module that calls it first); too late, or another kafkajs version, changes nothing.
 */
export function installLinearGrouping(): GroupingInstall {
  const require = createRequire(import.meta.url);
  if ((require('kafkajs/package.json') as { version: string }).version !== KAFKAJS_VERSION) return 'other-version';
  const file = require.resolve(MODULE);
  if (require.cache[file]) return 'already-loaded';
  const replacement = new Module(file);
  replacement.filename = file;
  replacement.exports = groupMessagesPerPartition;
  replacement.loaded = true;
  require.cache[file] = replacement;
  return 'installed';
}
