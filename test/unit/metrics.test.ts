import { describe, expect, it } from 'vitest';
import { FINDING_KINDS } from '../../src/detect/rules.ts';
import { createMetrics } from '../../src/metrics/index.ts';
import { INCONSISTENCY_KINDS } from '../../src/metrics/metrics.ts';

/** The names documented in docs/METRICS.md: renaming one breaks dashboards and alerts, and this test. */
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
  histogram: ['arbiter_decision_latency_seconds', 'arbiter_fetch_delay_seconds', 'arbiter_execution_latency_seconds'],
  gauge: ['arbiter_consumer_lag', 'arbiter_pending_requests', 'arbiter_waiting_followers', 'arbiter_executions_running', 'arbiter_lock_log_exporter'],
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

  it('reads the held requests and waiting followers when scraped, so they are current between chunks', async () => {
    let held = { pending: 7, waitingFollowers: 3 };
    const metrics = createMetrics(async () => held);
    const scrape = async () => (await metrics.registry.metrics()).match(/^arbiter_(pending_requests|waiting_followers) (\d+)$/gm);
    expect(await scrape()).toEqual(['arbiter_pending_requests 7', 'arbiter_waiting_followers 3']);
    held = { pending: 0, waitingFollowers: 0 };
    expect(await scrape()).toEqual(['arbiter_pending_requests 0', 'arbiter_waiting_followers 0']);
  });

  it('reads the held requests once per scrape for both gauges', async () => {
    let reads = 0;
    const metrics = createMetrics(async () => ({ pending: ++reads, waitingFollowers: reads }));
    const text = await metrics.registry.metrics();
    expect(reads).toBe(1);
    expect(text).toMatch(/^arbiter_pending_requests 1$/m);
    expect(text).toMatch(/^arbiter_waiting_followers 1$/m);
    await metrics.registry.metrics();
    expect(reads).toBe(2);
  });

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
      fetchDelay: 'arbiter_fetch_delay_seconds',
      executionLatency: 'arbiter_execution_latency_seconds',
      consumerLag: 'arbiter_consumer_lag',
      pending: 'arbiter_pending_requests',
      waitingFollowers: 'arbiter_waiting_followers',
      executionsRunning: 'arbiter_executions_running',
      lockLogExporter: 'arbiter_lock_log_exporter',
      planEvents: 'arbiter_plan_events_total',
      planOutboxRelayed: 'arbiter_plan_outbox_relayed_total',
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
    for (let i = 0; i < 150; i++) metrics.lockAcquireFailures.inc({ resource_type: 'pod', agent: `agent-${i}` });
    const text = await metrics.registry.metrics();
    expect(text).toContain('arbiter_decisions_total{status="REJECTED_INVALID",action="other"} 1');
    const agents = new Set([...text.matchAll(/arbiter_lock_acquire_failures_total\{resource_type="pod",agent="([^"]+)"\}/g)].map((m) => m[1]));
    expect(agents.size).toBe(101);
    expect(agents.has('other')).toBe(true);
    expect(text).toContain('arbiter_lock_acquire_failures_total{resource_type="pod",agent="other"} 50');
  });

  /** Every label of every Arbiter metric, fed 300 values nobody planned for, exports at most 101 values. */
  it('bounds every label of every metric, whoever calls it', async () => {
    const metrics = createMetrics();
    const ours = metrics.registry.getMetricsAsArray().filter((m) => !m.name.startsWith('arbiter_process_'));
    const labelled = ours.filter((m) => (m as unknown as { labelNames: string[] }).labelNames.length > 0);
    expect(labelled.length).toBeGreaterThanOrEqual(10);
    for (const metric of labelled) {
      const names = (metric as unknown as { labelNames: string[] }).labelNames;
      const bounds = metrics.labelBounds.get(metric.name);
      expect(bounds, `${metric.name} has no label bounds`).toBeDefined();
      expect(Object.keys(bounds!).sort(), metric.name).toEqual([...names].sort());
      const m = metric as unknown as Record<string, (labels: Record<string, string>, value: number) => void>;
      for (let i = 0; i < 300; i++) {
        const labels = Object.fromEntries(names.map((n) => [n, `unplanned-${n}-${i}`]));
        if (typeof m.inc === 'function') m.inc(labels, 1);
        else if (typeof m.observe === 'function') m.observe(labels, 1);
      }
      // The same through prom-client's other entry points: labels(...) children, positional values.
      const child = (metric as unknown as { labels: (...v: string[]) => Record<string, (v?: number) => void> }).labels(...names.map((n) => `positional-${n}`));
      (child.inc ?? child.observe)!(1);
      const values = (await (metric as unknown as { get(): Promise<{ values: Array<{ labels: object }> }> }).get()).values;
      for (const name of names) {
        const distinct = new Set(values.map((v) => String((v.labels as Record<string, string>)[name])));
        expect(distinct.size, `${metric.name}{${name}}`).toBeLessThanOrEqual(101);
        expect(distinct.has('other'), `${metric.name}{${name}}`).toBe(true);
      }
    }
  });

  it('starts the series alerts watch at 0, so a first increment is an increase', async () => {
    const text = await createMetrics().registry.metrics();
    for (const kind of ['drift', 'lost_change', 'conflicting_commits', 'stale_observation', 'unexpected_version']) {
      expect(text).toContain(`arbiter_inconsistencies_total{kind="${kind}"} 0`);
    }
    expect(text).toContain('arbiter_dead_letters_total{code="DECODE_FAILED"} 0');
    expect(text).toContain('arbiter_fenced_writes_total 0');
    expect(text).toContain('arbiter_lock_log_exporter 0');
    // Lock-log counters are exported by the one worker that holds the exporter lock: nothing until then.
    expect(text).not.toMatch(/^arbiter_lock_acquire_failures_total\{/m);
    expect(text).not.toMatch(/^arbiter_lock_ttl_expirations_total\{/m);
  });

  it('knows every kind of finding the detector records', () => {
    expect([...INCONSISTENCY_KINDS].sort()).toEqual([...FINDING_KINDS].sort());
  });

  it('keeps a closed set closed: unknown statuses, codes, kinds, partitions are other', async () => {
    const metrics = createMetrics();
    metrics.deadLetters.inc({ code: 'NOT_A_CODE' });
    metrics.inconsistencies.inc({ kind: 'gremlins' });
    metrics.consumerLag.set({ partition: 'x1' }, 5);
    metrics.consumerLag.set({ partition: '7' }, 3);
    metrics.deferrals.inc({ reason: 'whim' });
    metrics.planEvents.inc({ type: 'EXPLODED' });
    const text = await metrics.registry.metrics();
    expect(text).toContain('arbiter_dead_letters_total{code="other"} 1');
    expect(text).toContain('arbiter_inconsistencies_total{kind="other"} 1');
    expect(text).toContain('arbiter_consumer_lag{partition="other"} 5');
    expect(text).toContain('arbiter_consumer_lag{partition="7"} 3');
    expect(text).toContain('arbiter_deferrals_total{reason="other"} 1');
    expect(text).toContain('arbiter_plan_events_total{type="other"} 1');
  });
});
