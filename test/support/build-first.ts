import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const TSC = createRequire(import.meta.url).resolve('typescript/bin/tsc');

/**
 * Worker children, the `arbiter` calls of the tests and the race lab run built code (bin/arbiter.js
 * → dist/), so the tests build first: incrementally, about 2 s when nothing changed, and never a
 * stale worker. Type errors do not stop the tests: tsc still emits, and `npm run typecheck` is the
 * gate for types (as tsx, which ran the sources before there was a build, ignored them too).
 */
export default function buildFirst(): void {
  const result = spawnSync(process.execPath, [TSC, '-p', 'tsconfig.build.json'], { cwd: ROOT, encoding: 'utf8' });
  if (result.status === 0) return;
  // 2: diagnostics, outputs generated.
  if (result.status === 2) {
    process.stderr.write(`build-first: type errors; the tests run the emitted JavaScript anyway:\n${result.stdout}`);
    return;
  }
  throw new Error(`the build failed (npm run build), so the tests cannot run current code:\n${result.stdout}${result.stderr}`);
}
