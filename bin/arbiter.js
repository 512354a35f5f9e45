#!/usr/bin/env node
// Runs the TypeScript sources directly through tsx, so `npm ci` is the only install step. In a
// repository checkout, that is the tools CLI (the product's commands plus stack, test, sim, demo,
// bench); without tools/, the product CLI alone.
import { existsSync } from 'node:fs';
import { register } from 'tsx/esm/api';

register();
const tools = new URL('../tools/cli/main.ts', import.meta.url);
await import(existsSync(tools) ? tools.href : '../src/cli/main.ts');
