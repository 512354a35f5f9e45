#!/usr/bin/env node
// The `arbiter` command runs built JavaScript (`npm run build` writes dist/).
// - An installed package has no tools/: it runs the product CLI, dist/src/cli/main.js
//   (worker, migrate, submit, lock).
// - A repository checkout (tools/ beside bin/) runs the tools CLI, dist/tools/cli/main.js: the same
//   program plus stack, test, sim, demo and bench.
// The TypeScript sources run only in development, through tsx: `npm run dev -- <command>`.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const checkout = existsSync(new URL('../tools/', import.meta.url));
const entry = new URL(checkout ? '../dist/tools/cli/main.js' : '../dist/src/cli/main.js', import.meta.url);
if (!existsSync(entry)) {
  process.stderr.write(
    `arbiter: ${fileURLToPath(entry)} is missing: run \`npm run build\` first ` +
      '(`npm ci` builds; `npm run dev -- <command>` runs the sources)\n',
  );
  process.exit(1);
}
await import(entry.href);
