import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { mallocSettingsMissing, WORKER_MALLOC_ENV } from '../../src/worker/allocator.ts';
import { semiSpaceFlagMissing, WORKER_SEMI_SPACE_FLAG } from '../../src/worker/young-generation.ts';
import { KAFKA_IMAGE_JVM_PERFORMANCE_OPTS } from '../../tools/stack/kafka-config.ts';
import { workerEnv, workerNodeFlags } from '../../tools/support/index.ts';

const ROOT = new URL('../../', import.meta.url);
const read = (path: string) => readFileSync(new URL(path, ROOT), 'utf8');

/**
 * Helm is not installable here (no Debian package), so the chart is checked without rendering:
 * every `.Values.…` a template reads exists in values.yaml (a typo would render as empty), and
 * the credentials each component uses are wired as docs/SECURITY.md says. docker-compose.yml is
 * parsed and its per-component logins checked; test/integration/deploy-logins.test.ts runs its SQL.
 */
describe('deploy files: each component its own credentials', () => {
  const values = parseYaml(read('helm/arbiter/values.yaml')) as Record<string, unknown>;
  const templates = readdirSync(new URL('helm/arbiter/templates/', ROOT)).map((f) => [f, read(`helm/arbiter/templates/${f}`)] as const);

  it('every .Values path a template reads is in values.yaml', () => {
    const missing: string[] = [];
    for (const [file, text] of templates) {
      for (const [, path] of text.matchAll(/\.Values\.([A-Za-z0-9_.]+)/g)) {
        let at: unknown = values;
        for (const key of path!.split('.')) at = at !== null && typeof at === 'object' && key in at ? (at as Record<string, unknown>)[key] : undefined;
        if (at === undefined) missing.push(`${file}: .Values.${path}`);
      }
    }
    expect(missing).toEqual([]);
  });

  it('Helm: workers and the migrate Job get separate database URLs; keys and passwords come from Secrets', () => {
    const deployment = templates.find(([f]) => f === 'deployment.yaml')![1];
    const job = templates.find(([f]) => f === 'migrate-job.yaml')![1];
    expect(deployment).toContain('"existingSecret" .Values.database.existingSecret');
    expect(deployment).not.toContain('database.migrator');
    expect(job).toContain('"existingSecret" .Values.database.migrator.existingSecret');
    for (const env of ['ARBITER_SIGNING_KEY', 'ARBITER_EXECUTOR_HMAC_KEY', 'ARBITER_EXECUTOR_TOKEN']) {
      expect(deployment).toContain(`"name" "${env}"`);
      expect(job).not.toContain(env);
    }
    expect(job).toContain('ARBITER_ANALYST_PASSWORD');
    // No secret is given a default value in plain text.
    const database = values.database as { migrator: { url: string }; url: string };
    expect([database.url, database.migrator.url]).toEqual(['', '']);
  });

  it('compose: migrate as arbiter_deploy, workers as arbiter_compose_worker, after the logins exist', () => {
    type Service = { environment?: Record<string, string>; depends_on?: Record<string, unknown>; volumes?: string[]; command?: string[] };
    const compose = parseYaml(read('docker-compose.yml'), { merge: true }) as { services: Record<string, Service> };
    const user = (service: string) => new URL(compose.services[service]!.environment!.DATABASE_URL!).username;
    expect(user('migrate')).toBe('arbiter_deploy');
    expect(user('worker')).toBe('arbiter_compose_worker');
    expect(Object.keys(compose.services.migrate!.depends_on!)).toContain('db-init');
    expect(Object.keys(compose.services.worker!.depends_on!)).toContain('db-logins');
    for (const [service, file] of [['db-init', 'db-init.sql'], ['db-logins', 'db-logins.sql']] as const) {
      const mount = compose.services[service]!.volumes![0]!.split(':')[0]!;
      expect(compose.services[service]!.command).toContain(`/sql/${file}`);
      expect(existsSync(new URL(`${mount.replace(/^\.\//, '')}/${file}`, ROOT)), `${mount}/${file}`).toBe(true);
    }
  });

  it("compose: the broker's G1 regions are 16 MB, as the stack's brokers' are", () => {
    const compose = parseYaml(read('docker-compose.yml'), { merge: true }) as { services: Record<string, { environment?: Record<string, string> }> };
    const options = compose.services.kafka!.environment!.KAFKA_JVM_PERFORMANCE_OPTS;
    expect(options).toBe(KAFKA_IMAGE_JVM_PERFORMANCE_OPTS);
    expect(options).toContain('-XX:G1HeapRegionSize=16M');
  });
});

describe('deploy files: the worker’s malloc setting', () => {
  it('the image’s worker stage and every tool-started worker run with WORKER_MALLOC_ENV', () => {
    const dockerfile = read('Dockerfile');
    const workerStage = dockerfile.slice(dockerfile.indexOf('AS worker'));
    for (const [name, value] of Object.entries(WORKER_MALLOC_ENV)) expect(workerStage).toMatch(new RegExp(`^ENV ${name}=${value}$`, 'm'));
    const site = { kafkaBrokers: 'k:9092', schemaRegistryUrl: 'http://r', databaseUrl: 'postgres://d', topicPrefix: 'p', groupId: 'g', executorUrl: 'http://e' };
    expect(workerEnv(site)).toMatchObject(WORKER_MALLOC_ENV);
    expect(mallocSettingsMissing(workerEnv(site))).toEqual([]);
    expect(mallocSettingsMissing({})).toEqual(Object.keys(WORKER_MALLOC_ENV));
  });
});

describe('deploy files: the worker’s young generation', () => {
  const semiSpaceMb = Number(/=(\d+)$/.exec(WORKER_SEMI_SPACE_FLAG)![1]);

  it('the image, compose and Helm start a worker with WORKER_SEMI_SPACE_FLAG', () => {
    const dockerfile = read('Dockerfile');
    expect(dockerfile.slice(dockerfile.indexOf('AS worker'))).toMatch(new RegExp(`^ENV NODE_OPTIONS=${WORKER_SEMI_SPACE_FLAG}$`, 'm'));
    const compose = parseYaml(read('docker-compose.yml'), { merge: true }) as { services: Record<string, { environment?: Record<string, string> }> };
    const workers = Object.entries(compose.services).filter(([, s]) => s.environment?.ARBITER_METRICS_PORT);
    expect(workers.length).toBeGreaterThan(0);
    for (const [name, service] of workers) expect(service.environment!.NODE_OPTIONS?.split(' '), name).toContain(WORKER_SEMI_SPACE_FLAG);
    // Helm sets NODE_OPTIONS whether or not heapMb is set, so the image's value is never lost.
    const deployment = read('helm/arbiter/templates/deployment.yaml');
    const nodeOptions = /name: NODE_OPTIONS\n\s+value: "([^\n]*)"\n/.exec(deployment)?.[1];
    expect(nodeOptions).toContain('--max-semi-space-size={{ .Values.semiSpaceMb }}');
    expect(nodeOptions).toContain('--max-old-space-size={{ .Values.heapMb }}');
    // Not inside an `if` that leaves the variable out when heapMb is 0 (as it was before the flag).
    const linesBefore = deployment.slice(0, deployment.indexOf('- name: NODE_OPTIONS')).split('\n').slice(-5);
    expect(linesBefore.join('\n')).not.toMatch(/\{\{-? if /);
    expect((parseYaml(read('helm/arbiter/values.yaml')) as { semiSpaceMb: number }).semiSpaceMb).toBe(semiSpaceMb);
  });

  it('every tool-started worker gets it, unless the tool’s own NODE_OPTIONS sizes the young generation', () => {
    expect(workerNodeFlags({})).toEqual([WORKER_SEMI_SPACE_FLAG]);
    expect(workerNodeFlags({ NODE_OPTIONS: '--max-old-space-size=256' })).toEqual([WORKER_SEMI_SPACE_FLAG]);
    expect(workerNodeFlags({ NODE_OPTIONS: '--max-old-space-size=256 --max-semi-space-size=16' })).toEqual([]);
  });

  it('a worker knows whether it was started with a semi-space size, on its command line or in NODE_OPTIONS', () => {
    expect(semiSpaceFlagMissing([], {})).toBe(true);
    expect(semiSpaceFlagMissing(['--max-old-space-size=256'], { NODE_OPTIONS: '--enable-source-maps' })).toBe(true);
    expect(semiSpaceFlagMissing([WORKER_SEMI_SPACE_FLAG], {})).toBe(false);
    expect(semiSpaceFlagMissing([], { NODE_OPTIONS: `--max-old-space-size=256 ${WORKER_SEMI_SPACE_FLAG}` })).toBe(false);
  });
});
