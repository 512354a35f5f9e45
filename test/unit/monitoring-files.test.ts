import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { createMetrics } from '../../src/metrics/index.ts';

const ROOT = new URL('../../', import.meta.url);
const read = (path: string) => readFileSync(new URL(path, ROOT), 'utf8');

interface Rule {
  alert?: string;
  expr: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}
interface Panel {
  type: string;
  title: string;
  targets?: Array<{ expr: string }>;
}

const rules = (parseYaml(read('helm/arbiter/files/prometheus/arbiter-rules.yaml')) as { groups: Array<{ rules: Rule[] }> }).groups.flatMap((g) => g.rules);
const dashboard = JSON.parse(read('helm/arbiter/files/grafana/arbiter-dashboard.json')) as { uid: string; panels: Panel[] };

/** Metric names an expression uses (arbiter_… identifiers not followed by a label or function call paren). */
function metricNames(expr: string): string[] {
  return [...expr.matchAll(/\b(arbiter_[a-z_]+)\b/g)].map((m) => m[1]!);
}

describe('the alert rules and the dashboard use metrics that exist', () => {
  const exported = new Set(createMetrics().registry.getMetricsAsArray().map((m) => m.name));

  it.each(rules.map((r) => [r.alert!, r] as const))('rule %s', (_name, rule) => {
    expect(metricNames(rule.expr).length).toBeGreaterThan(0);
    for (const name of metricNames(rule.expr)) expect(exported, `${rule.alert}: ${name}`).toContain(name);
    expect(['warning', 'critical']).toContain(rule.labels?.severity);
    expect(rule.annotations?.summary).toBeTruthy();
    // Every runbook anchor is a metric documented in docs/METRICS.md.
    const anchor = /#(arbiter_[a-z_]+)$/.exec(rule.annotations?.runbook ?? '')?.[1];
    expect(anchor && exported.has(anchor), `${rule.alert} runbook ${rule.annotations?.runbook}`).toBe(true);
  });

  it('alerts on the three signals and on lag, dead letters and fenced writes', () => {
    const byMetric = (metric: string) => rules.filter((r) => r.expr.includes(metric)).map((r) => r.alert);
    for (const metric of [
      'arbiter_lock_acquire_failures_total',
      'arbiter_lock_ttl_expirations_total',
      'arbiter_inconsistencies_total',
      'arbiter_consumer_lag',
      'arbiter_dead_letters_total',
      'arbiter_fenced_writes_total',
    ]) {
      expect(byMetric(metric).length, metric).toBeGreaterThan(0);
    }
  });

  it('dashboard: one row per signal, every query on an exported metric', () => {
    const rows = dashboard.panels.filter((p) => p.type === 'row').map((p) => p.title);
    for (const topic of [/contention/i, /TTL expirations/i, /inconsistent/i, /lag/i, /dead letters/i, /fenced/i]) {
      expect(rows.filter((t) => topic.test(t)), String(topic)).toHaveLength(1);
    }
    const exprs = dashboard.panels.flatMap((p) => p.targets ?? []).map((t) => t.expr);
    expect(exprs.length).toBeGreaterThanOrEqual(12);
    for (const expr of exprs) for (const name of metricNames(expr)) expect(exported, expr).toContain(name);
  });
});

describe('provisioning', () => {
  it('docker-compose.yml mounts files that exist, for a prometheus and a grafana service', () => {
    const compose = parseYaml(read('docker-compose.yml')) as { services: Record<string, { volumes?: string[] }> };
    for (const service of ['prometheus', 'grafana']) {
      const volumes = compose.services[service]?.volumes ?? [];
      expect(volumes.length, service).toBeGreaterThan(0);
      for (const volume of volumes) expect(existsSync(new URL(volume.split(':')[0]!, ROOT)), volume).toBe(true);
    }
  });

  it('the Helm chart ships the same files, labelled for the sidecars', () => {
    const template = read('helm/arbiter/templates/monitoring.yaml');
    for (const file of [...template.matchAll(/\.Files\.Get "([^"]+)"/g)].map((m) => m[1]!)) {
      expect(existsSync(new URL(`helm/arbiter/${file}`, ROOT)), file).toBe(true);
    }
    const values = parseYaml(read('helm/arbiter/values.yaml')) as { metrics: Record<string, { enabled: boolean; labels: Record<string, string> }> };
    expect(values.metrics.dashboard).toMatchObject({ enabled: true, labels: { grafana_dashboard: '1' } });
    expect(values.metrics.rules).toMatchObject({ enabled: true, labels: { prometheus_rule: '1' } });
    // Compose-only files stay out of the chart package.
    expect(read('helm/arbiter/.helmignore')).toContain('files/grafana/provisioning/');
  });
});

describe('docs/METRICS.md', () => {
  it('has a reference row, with an anchor, for every metric Arbiter registers', () => {
    const doc = read('docs/METRICS.md');
    const names = createMetrics()
      .registry.getMetricsAsArray()
      .map((m) => m.name)
      .filter((name) => !name.startsWith('arbiter_process_'));
    expect(names.length).toBeGreaterThanOrEqual(17);
    for (const name of names) expect(doc, name).toContain(`<a id="${name}"></a>\`${name}\``);
  });
});
