import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { groupMessagesPerPartition } from '../../src/contract/kafkajs-grouping.ts';

const run = promisify(execFile);
const require = createRequire(import.meta.url);
const source = (path: string) => readFileSync(fileURLToPath(new URL(path, import.meta.url)), 'utf8');

/** kafkajs' own (quadratic) implementation, as shipped: what the replacement must match. */
const original = require('kafkajs/src/producer/groupMessagesPerPartition.js') as typeof groupMessagesPerPartition;

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

  it('is what kafkajs loads in a process that starts as the CLI does', async () => {
    const script = `
      const { kafkajsGrouping } = await import(${JSON.stringify(fileURLToPath(new URL('../../src/cli/kafkajs-setup.ts', import.meta.url)))});
      const { groupMessagesPerPartition } = await import(${JSON.stringify(fileURLToPath(new URL('../../src/contract/kafkajs-grouping.ts', import.meta.url)))});
      await import('kafkajs');
      const { createRequire } = await import('node:module');
      const loaded = createRequire(${JSON.stringify(import.meta.url)})('kafkajs/src/producer/groupMessagesPerPartition.js');
      console.log(JSON.stringify({ kafkajsGrouping, ours: loaded === groupMessagesPerPartition }));
    `;
    const { stdout } = await run(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { timeout: 60_000 });
    expect(JSON.parse(stdout.trim().split('\n').pop()!)).toEqual({ kafkajsGrouping: 'installed', ours: true });
  }, 60_000);

  it('comes first in every entry point, before any module can load kafkajs', () => {
    const firstImport = (file: string) => source(file).match(/^import .*$/m)?.[0];
    expect(firstImport('../../src/cli/main.ts')).toContain("'./kafkajs-setup.ts'");
    expect(firstImport('../../src/cli/index.ts')).toContain("'./kafkajs-setup.ts'");
    expect(firstImport('../../tools/cli/main.ts')).toContain("'../../src/cli/index.ts'");
    expect(firstImport('../../tools/bench/bare-loop-main.ts')).toContain("'../../src/cli/index.ts'");
  });
});
