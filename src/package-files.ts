import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

// The package ships data beside its code: schemas/ and migrations/ at its root, next to src/ in a
// checkout and next to dist/ when built (dist/src/ holds this file as package-files.js). Every read
// of those files goes through here, so it works from the sources, from dist, and installed.
const BUILT = import.meta.url.endsWith('.js');
const PACKAGE_ROOT = fileURLToPath(new URL(BUILT ? '../../' : '../', import.meta.url));

/** The path of a file or folder shipped with the package, e.g. `packagePath('schemas', 'x.avsc')`. */
export function packagePath(...segments: string[]): string {
  return join(PACKAGE_ROOT, ...segments);
}
