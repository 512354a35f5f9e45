// Imported FIRST by the CLI's entry points (src/cli/main.ts, and src/cli/index.ts for the tools
// CLI): ES modules run in import order, so this runs before any module that loads kafkajs.
// test/unit/kafkajs-patches.test.ts checks both the order and that kafkajs then uses them.
import { installKafkajsPatches } from '../contract/kafkajs-patches.ts';

/** What happened to each replacement: all 'installed' in every `arbiter` process on kafkajs 2.2.4. */
export const kafkajsPatches = installKafkajsPatches();
