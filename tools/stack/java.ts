import { execFile } from 'node:child_process';
import { existsSync, readdirSync, realpathSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

export interface JavaInstall {
  path: string;
  major: number;
}

export interface JavaRequest {
  /** Who needs it, for the error message: "Apicurio Registry 3.3.3". */
  purpose: string;
  minMajor: number;
  /** An explicit choice (an ARBITER_*_JAVA variable); a wrong one is an error, never skipped. */
  override: { name: string; path: string | undefined };
  javaHome: string | undefined;
  /** Where a JDK directory (/usr/lib/jvm/*) ranks against `java` on PATH. */
  preferInstalledJdks: boolean;
}

/** `java -version` prints e.g. `openjdk version "17.0.15" 2025-04-15` or `java version "1.8.0_292"`. */
export function parseJavaMajorVersion(versionOutput: string): number | undefined {
  const version = /version "([^"]+)"/.exec(versionOutput)?.[1];
  if (version === undefined) return undefined;
  const parts = version.split(/[.+_-]/);
  const major = Number(parts[0] === '1' ? parts[1] : parts[0]);
  return Number.isInteger(major) && major > 0 ? major : undefined;
}

export async function findJava(request: JavaRequest): Promise<JavaInstall> {
  const { override, minMajor } = request;
  if (override.path !== undefined) {
    const major = await javaMajorVersion(override.path);
    if (major !== undefined && major >= minMajor) return { path: override.path, major };
    throw new Error(
      `${override.name}=${override.path} is ${major === undefined ? 'not a working java' : `Java ${major}`}; ` +
        `${request.purpose} needs Java ${minMajor} or newer`,
    );
  }

  const seen: string[] = [];
  const fromJavaHome = async (): Promise<JavaInstall[]> =>
    request.javaHome === undefined ? [] : probeAll([join(request.javaHome, 'bin', 'java')], seen);
  const fromInstalledJdks = async (): Promise<JavaInstall[]> =>
    (await probeAll(installedJdkBinaries(), seen)).sort((a, b) => b.major - a.major);
  const fromPath = async (): Promise<JavaInstall[]> => probeAll(['java'], seen);

  const sources = request.preferInstalledJdks
    ? [fromJavaHome, fromInstalledJdks, fromPath]
    : [fromJavaHome, fromPath, fromInstalledJdks];
  for (const source of sources) {
    const found = (await source()).find((install) => install.major >= minMajor);
    if (found !== undefined) return found;
  }
  throw new Error(
    `${request.purpose} needs Java ${minMajor} or newer, and none was found ` +
      `(looked at ${seen.length > 0 ? seen.join(', ') : 'JAVA_HOME, /usr/lib/jvm and PATH'}). ` +
      `Install a JDK ${minMajor}+ (for example the openjdk-${minMajor}-jdk-headless package where your distribution has it, ` +
      `or Eclipse Temurin ${minMajor} from adoptium.net) ` +
      `or set ${override.name} to its bin/java.`,
  );
}

async function probeAll(paths: string[], seen: string[]): Promise<JavaInstall[]> {
  const installs: JavaInstall[] = [];
  for (const path of paths) {
    const major = await javaMajorVersion(path);
    seen.push(`${path} (${major === undefined ? 'not working' : `Java ${major}`})`);
    if (major !== undefined) installs.push({ path, major });
  }
  return installs;
}

async function javaMajorVersion(javaPath: string): Promise<number | undefined> {
  try {
    const { stdout, stderr } = await execFileAsync(javaPath, ['-version'], { timeout: 15_000 });
    return parseJavaMajorVersion(`${stderr}\n${stdout}`);
  } catch {
    return undefined;
  }
}

function installedJdkBinaries(): string[] {
  const roots: Array<{ dir: string; suffix: string[] }> = [
    { dir: '/usr/lib/jvm', suffix: ['bin', 'java'] },
    { dir: '/Library/Java/JavaVirtualMachines', suffix: ['Contents', 'Home', 'bin', 'java'] },
  ];
  const binaries = new Map<string, string>();
  for (const root of roots) {
    if (!existsSync(root.dir)) continue;
    for (const entry of readdirSync(root.dir)) {
      const binary = join(root.dir, entry, ...root.suffix);
      // Debian installs each JDK under several symlinked names; probe each one once.
      if (existsSync(binary)) binaries.set(realpathSync(binary), binary);
    }
  }
  return [...binaries.values()];
}
