import { randomUUID } from 'node:crypto';
import { Kafka, logLevel, type Consumer } from 'kafkajs';
import type pg from 'pg';
import { Serde } from '../../src/contract/serde.ts';
import { topicNames } from '../../src/contract/topics.ts';
import type { RemediationOutcome } from '../../src/contract/outcome.ts';
import type { RequestInput } from '../../src/contract/request.ts';
import { deploymentArn, podArn, type Fleet, type FleetSpecInput, type ViolationKind } from '../../tools/fleet/index.ts';
import { endpoints, eventually } from './harness.ts';

/**
 * The three seed races of the design (same-pod restarts, rollback × hotfix, drains of every replica),
 * as storms of concurrent requests. The same storms are sent through Arbiter (races.test.ts) and
 * straight to the fleet (races-bypass.test.ts), so the second proves the first's checks can fail.
 */

/** Restarts: one pod of a 4-replica deployment. */
export const RESTART_DEPLOYMENT = deploymentArn('payments', 'api');
export const RESTART_POD = podArn(RESTART_DEPLOYMENT, 'api', 0);
/** Rollback × hotfix: a deployment whose revisions the agents fight over. */
export const REVISION_DEPLOYMENT = deploymentArn('payments', 'ledger');
/** Drains: every replica of a deployment that may lose only one at a time. */
export const DRAIN_DEPLOYMENT = deploymentArn('checkout', 'web');
export const DRAIN_REPLICAS = 4;
export const DRAIN_MIN_AVAILABLE = 3;
export const drainPod = (i: number) => podArn(DRAIN_DEPLOYMENT, 'web', i);

export const RACE_FLEET: FleetSpecInput = {
  deployments: [
    { namespace: 'payments', name: 'api', replicas: 4, minAvailable: 3, revision: 'v1' },
    { namespace: 'payments', name: 'ledger', replicas: 2, minAvailable: 1, revision: 'v1' },
    { namespace: 'checkout', name: 'web', replicas: DRAIN_REPLICAS, minAvailable: DRAIN_MIN_AVAILABLE, revision: 'v1' },
  ],
};

export const agentName = (race: string, i: number) => `${race}-agent-${String(i).padStart(2, '0')}`;

/** N agents restarting the same pod at once, each for its own reasons (the reason is not a param). */
export function restartStorm(agents: number): RequestInput[] {
  return Array.from({ length: agents }, (_, i) => ({
    agentId: agentName('restart', i),
    resourceArn: RESTART_POD,
    action: 'restart',
    reason: `agent ${i} saw the pod unhealthy`,
  }));
}

/**
 * Half the agents roll the deployment back, half apply hotfixes (each its own patch), all based on the
 * version they just observed. Interleaved so that, without Arbiter, rollbacks finish after hotfixes.
 */
export function revisionStorm(agents: number, observedVersion: number): RequestInput[] {
  return Array.from({ length: agents }, (_, i): RequestInput => {
    const agentId = agentName('revision', i);
    const basedOn = String(observedVersion);
    return i % 2 === 0
      ? { agentId, resourceArn: REVISION_DEPLOYMENT, action: 'hotfix', expectedVersion: observedVersion, params: { patch: `patch-${i}`, basedOnVersion: basedOn } }
      : { agentId, resourceArn: REVISION_DEPLOYMENT, action: 'rollback', expectedVersion: observedVersion, params: { ticket: `rb-${i}`, basedOnVersion: basedOn } };
  });
}

/** Several agents per pod, every pod of the deployment: each agent decided on its own to drain "its" pod. */
export function drainStorm(agents: number): RequestInput[] {
  return Array.from({ length: agents }, (_, i) => ({
    agentId: agentName('drain', i),
    resourceArn: drainPod(i % DRAIN_REPLICAS),
    action: 'drain',
    reason: `agent ${i} wants its node back`,
  }));
}

export function violationCounts(fleet: Fleet): Record<ViolationKind, number> {
  return fleet.violations().counts;
}

/** Polls the deployment's available replicas while a storm runs; `stop()` returns the lowest seen. */
export function sampleAvailable(fleet: Fleet, arn: string, everyMs = 5): { stop(): { lowest: number; samples: number } } {
  let lowest = Number.POSITIVE_INFINITY;
  let samples = 0;
  const read = () => {
    const available = fleet.observe(arn).state.available as number;
    lowest = Math.min(lowest, available);
    samples += 1;
  };
  read();
  const timer = setInterval(read, everyMs);
  return {
    stop() {
      clearInterval(timer);
      read();
      return { lowest, samples };
    },
  };
}

/**
 * Reads the outcomes topic raw (its own consumer group, from the beginning), so a test sees every
 * outcome record that was published, duplicates included: the SDK deduplicates, this does not.
 */
export class OutcomeTap {
  readonly records: RemediationOutcome[] = [];
  private readonly consumer: Consumer;
  private readonly serde: Serde;
  private readonly topic: string;

  constructor(prefix: string) {
    const topics = topicNames(prefix);
    this.topic = topics.outcomes;
    this.serde = new Serde(endpoints.schemaRegistryUrl, topics);
    const kafka = new Kafka({ clientId: `tap-${prefix}`, brokers: [endpoints.kafkaBrokers], logLevel: logLevel.NOTHING });
    this.consumer = kafka.consumer({ groupId: `tap-${prefix}-${randomUUID().slice(0, 8)}`, maxWaitTimeInMs: 50 });
  }

  async start(): Promise<this> {
    await this.consumer.connect();
    await this.consumer.subscribe({ topic: this.topic, fromBeginning: true });
    await this.consumer.run({
      autoCommit: false,
      eachMessage: async ({ message }) => {
        this.records.push(await this.serde.decodeOutcome(message.value));
      },
    });
    return this;
  }

  finals(requestId: string): RemediationOutcome[] {
    return this.records.filter((o) => o.requestId === requestId && o.final);
  }

  progress(requestId: string): RemediationOutcome[] {
    return this.records.filter((o) => o.requestId === requestId && !o.final);
  }

  /** Waits until every request has at least one final outcome record on the topic. */
  async waitForFinals(requestIds: string[], timeoutMs = 30_000): Promise<void> {
    await eventually(async () => requestIds.every((id) => this.finals(id).length > 0), timeoutMs, `final outcome records for ${requestIds.length} requests on the topic`);
  }

  async stop(): Promise<void> {
    await this.consumer.disconnect().catch(() => {});
  }
}

/** requestId → number of final decisions recorded in Postgres, for the given ids (0 when none). */
export async function finalDecisionCounts(db: pg.Pool, requestIds: string[]): Promise<Map<string, number>> {
  const { rows } = await db.query(
    'SELECT request_id, count(*)::int AS n FROM arbiter.decisions WHERE final AND request_id = ANY($1::uuid[]) GROUP BY 1',
    [requestIds],
  );
  const counts = new Map(requestIds.map((id) => [id, 0]));
  for (const r of rows) counts.set(r.request_id, r.n);
  return counts;
}

/** The final decision of each request in Postgres: status and primary. */
export async function finalDecisions(db: pg.Pool, requestIds: string[]): Promise<Map<string, { status: string; primary: string | null; workerId: string | null }>> {
  const { rows } = await db.query(
    'SELECT request_id, status, primary_request_id, worker_id FROM arbiter.decisions WHERE final AND request_id = ANY($1::uuid[])',
    [requestIds],
  );
  return new Map(rows.map((r) => [r.request_id, { status: r.status, primary: r.primary_request_id, workerId: r.worker_id }]));
}

export function tally(statuses: string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const s of statuses) out[s] = (out[s] ?? 0) + 1;
  return out;
}
