import { describe, expect, it } from 'vitest';
import { createMetrics } from '../../src/metrics/index.ts';

/** The names documented in the README: renaming one breaks dashboards and alerts, and this test. */
const DOCUMENTED = {
  counter: [
    'arbiter_decisions_total',
    'arbiter_coalesced_total',
    'arbiter_deferrals_total',
    'arbiter_dead_letters_total',
    'arbiter_rerouted_total',
    'arbiter_lock_acquire_failures_total',
    'arbiter_lock_ttl_expirations_total',
    'arbiter_fenced_writes_total',
    'arbiter_inconsistencies_total',
  ],
  histogram: ['arbiter_decision_latency_seconds', 'arbiter_execution_latency_seconds'],
  gauge: ['arbiter_consumer_lag', 'arbiter_pending_requests', 'arbiter_executions_running'],
} as const;

describe('createMetrics', () => {
  it.each(Object.entries(DOCUMENTED).flatMap(([type, names]) => names.map((name) => [name, type] as const)))(
    'registers %s as a %s',
    async (name, type) => {
      const metrics = createMetrics();
      const metric = metrics.registry.getSingleMetric(name);
      expect(metric, `${name} is not registered`).toBeDefined();
      const [json] = (await metrics.registry.getMetricsAsJSON()).filter((m) => m.name === name);
      expect(json?.type).toBe(type);
      expect(json?.help).not.toBe('');
    },
  );

  it('exposes them in the Prometheus text format', async () => {
    const metrics = createMetrics();
    metrics.decisions.inc({ status: 'EXECUTED', action: 'restart' });
    metrics.coalesced.inc({ action: 'restart' });
    metrics.decisionLatency.observe(0.02);
    metrics.consumerLag.set({ partition: '3' }, 42);
    const text = await metrics.registry.metrics();
    for (const name of Object.values(DOCUMENTED).flat()) expect(text).toContain(`# TYPE ${name} `);
    expect(text).toContain('arbiter_decisions_total{status="EXECUTED",action="restart"} 1');
    expect(text).toContain('arbiter_coalesced_total{action="restart"} 1');
    expect(text).toContain('arbiter_consumer_lag{partition="3"} 42');
    expect(text).toContain('arbiter_decision_latency_seconds_count 1');
    // Default process metrics carry our prefix, so they never clash with another library's.
    expect(text).toMatch(/^arbiter_process_\w+/m);
  });

  it('wires each documented name to the property the worker uses', () => {
    const metrics = createMetrics();
    const byProperty: Record<string, string> = {
      decisions: 'arbiter_decisions_total',
      coalesced: 'arbiter_coalesced_total',
      deferrals: 'arbiter_deferrals_total',
      deadLetters: 'arbiter_dead_letters_total',
      rerouted: 'arbiter_rerouted_total',
      lockAcquireFailures: 'arbiter_lock_acquire_failures_total',
      lockExpirations: 'arbiter_lock_ttl_expirations_total',
      fencedWrites: 'arbiter_fenced_writes_total',
      inconsistencies: 'arbiter_inconsistencies_total',
      decisionLatency: 'arbiter_decision_latency_seconds',
      executionLatency: 'arbiter_execution_latency_seconds',
      consumerLag: 'arbiter_consumer_lag',
      pending: 'arbiter_pending_requests',
      executionsRunning: 'arbiter_executions_running',
    };
    for (const [property, name] of Object.entries(byProperty)) {
      expect(metrics.registry.getSingleMetric(name), property).toBe(metrics[property as keyof typeof metrics]);
    }
  });

  it('gives every worker a registry of its own', async () => {
    const a = createMetrics();
    const b = createMetrics();
    expect(a.registry).not.toBe(b.registry);
    a.rerouted.inc();
    a.rerouted.inc();
    const [inB] = (await b.registry.getMetricsAsJSON()).filter((m) => m.name === 'arbiter_rerouted_total');
    expect(inB?.values.map((v) => v.value)).toEqual([0]);
    const [inA] = (await a.registry.getMetricsAsJSON()).filter((m) => m.name === 'arbiter_rerouted_total');
    expect(inA?.values.map((v) => v.value)).toEqual([2]);
  });
});

describe('metric labels stay bounded', () => {
  it('maps an unknown action to other, and caps distinct agents at 100', async () => {
    const metrics = createMetrics();
    metrics.countDecision('REJECTED_INVALID', 'reboot-the-world-' + 'x'.repeat(50));
    for (let i = 0; i < 150; i++) metrics.countLockAcquireFailure('pod', `agent-${i}`);
    const text = await metrics.registry.metrics();
    expect(text).toContain('arbiter_decisions_total{status="REJECTED_INVALID",action="other"} 1');
    const agents = new Set([...text.matchAll(/arbiter_lock_acquire_failures_total\{resource_type="pod",agent="([^"]+)"\}/g)].map((m) => m[1]));
    expect(agents.size).toBe(101);
    expect(agents.has('other')).toBe(true);
    expect(text).toContain('arbiter_lock_acquire_failures_total{resource_type="pod",agent="other"} 50');
  });
});
