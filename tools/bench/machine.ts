import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { cpus, loadavg, release, totalmem, type as osType } from 'node:os';
import type pg from 'pg';
import { APICURIO_VERSION, KAFKA_VERSION } from '../stack/index.ts';
import { REPO_ROOT as ROOT } from '../support/index.ts';

export interface MachineDescription {
  date: string;
  command: string;
  gitCommit: string;
  cpu: string;
  cores: number;
  memoryGb: number;
  os: string;
  node: string;
  java: string;
  kafka: string;
  registry: string;
  postgres: string;
  postgresSettings: Record<string, string>;
  loadAverageAtStart: number[];
}

function firstLine(command: string, args: string[], fromStderr = false): string {
  const result = spawnSync(command, args, { encoding: 'utf8', cwd: ROOT });
  const text = (fromStderr ? result.stderr : result.stdout) ?? '';
  return text.split('\n')[0]?.trim() || 'unknown';
}

/** What the numbers were measured on; goes at the top of the report. */
export async function describeMachine(db: pg.Pool, argv: string[]): Promise<MachineDescription> {
  const settings = await db.query(
    `SELECT name, setting, unit FROM pg_settings
      WHERE name IN ('shared_buffers', 'synchronous_commit', 'fsync', 'wal_level', 'max_wal_size', 'checkpoint_timeout', 'max_connections')
      ORDER BY name`,
  );
  const version = await db.query('SHOW server_version');
  const dirty = spawnSync('git', ['status', '--porcelain', '--untracked-files=no'], { encoding: 'utf8', cwd: ROOT }).stdout?.trim();
  const head = firstLine('git', ['rev-parse', '--short', 'HEAD']);
  // A tree exported with `git archive` has no .git; a COMMIT file beside package.json can name its commit.
  const exported = existsSync(join(ROOT, 'COMMIT')) ? `${readFileSync(join(ROOT, 'COMMIT'), 'utf8').trim()} (exported tree)` : 'unknown';
  return {
    date: new Date().toISOString(),
    command: argv.join(' '),
    gitCommit: head === 'unknown' ? exported : `${head}${dirty ? ' (with uncommitted changes)' : ''}`,
    cpu: cpus()[0]?.model ?? 'unknown',
    cores: cpus().length,
    memoryGb: Math.round(totalmem() / 1024 ** 3),
    os: `${osType()} ${release()}`,
    node: process.version,
    java: firstLine('java', ['-version'], true),
    kafka: `Apache Kafka ${KAFKA_VERSION} (KRaft, single node, from \`arbiter stack up\`)`,
    registry: `Apicurio Registry ${APICURIO_VERSION} (ccompat API)`,
    postgres: `PostgreSQL ${version.rows[0].server_version}`,
    postgresSettings: Object.fromEntries(settings.rows.map((r) => [r.name, `${r.setting}${r.unit ? ` ${r.unit}` : ''}`])),
    loadAverageAtStart: loadavg().map((l) => Math.round(l * 100) / 100),
  };
}
