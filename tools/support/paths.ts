import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

// Tools run from their sources (tools/support/, through tsx or vitest) or built
// (dist/tools/support/); either way the repository root is a fixed number of folders up.
const BUILT = import.meta.url.includes('/dist/tools/');

/** The repository checkout: bin/, node_modules/, the working directory of every child process. */
export const REPO_ROOT = fileURLToPath(new URL(BUILT ? '../../../' : '../../', import.meta.url));

/** The CLI entry the tools start children with (`arbiter worker`, `arbiter sim`), as a user would. */
export const ARBITER_BIN = join(REPO_ROOT, 'bin', 'arbiter.js');

/**
 * node arguments that run a sibling module as its own process: the built .js directly, the .ts
 * source through tsx (development). `--import tsx` resolves from the cwd, so spawn in REPO_ROOT.
 */
export function nodeScript(moduleUrl: URL): string[] {
  const path = fileURLToPath(moduleUrl);
  if (!path.endsWith('.ts')) return [path];
  return ['--import', 'tsx', path];
}

/** `./name.ts` next to `importMetaUrl`, or `./name.js` when the caller itself was built. */
export function siblingModule(importMetaUrl: string, name: string): URL {
  return new URL(`./${name}${importMetaUrl.endsWith('.ts') ? '.ts' : '.js'}`, importMetaUrl);
}
