import type pg from 'pg';
import type { FinalStatus } from '../contract/outcome.ts';
import type { PlanEvent, PlanSpec, PlanStatus, PlanStep, StepStatus } from '../contract/plan.ts';
import { buildRequest, type RemediationRequest } from '../contract/request.ts';
import { inTransaction } from '../db/index.ts';
import { advancePlan, validatePlan, type PlanInput, type PlanState, type PlanTransition, type StepFinish } from './machine.ts';

/** A row of arbiter.plan_outbox: a step request or a plan event, waiting to be published. */
export type OutboxRow = { id: number; planId: string } & ({ kind: 'request'; payload: RemediationRequest } | { kind: 'event'; payload: PlanEvent });

export interface PlanSummary {
  planId: string;
  agentId: string;
  status: PlanStatus;
  detail: string | null;
  deadline: number | null;
  parentRequestId: string | null;
  createdAt: number;
  finishedAt: number | null;
  steps: Array<PlanStep & { status: StepStatus; detail: string | null }>;
}

// Any pair of relays agree on it: one of them publishes the outbox at a time, so a plan's events keep their order.
const OUTBOX_LOCK = 0x6172_6269; // 'arbi'

/**
 * Plan state in PostgreSQL. Every change goes through one transaction that takes the plan's row
 * lock, runs the pure state machine (machine.ts), and writes the new state, its events and the
 * outbox rows together: a relay killed at any point leaves either all of it or none.
 */
export class PlanStore {
  constructor(
    private readonly pool: pg.Pool,
    /** Told of every event recorded (after its transaction committed): the metrics. */
    private readonly onEvents: (events: readonly PlanEvent[]) => void = () => {},
  ) {}

  /**
   * Stores a plan and releases its first steps; idempotent by plan id (a resubmitted command, or a
   * request expanded again after its owner died, changes nothing). Returns the plan's status.
   */
  async create(spec: PlanSpec, now: number = Date.now(), refusal: string | null = null): Promise<PlanStatus> {
    return inTransaction(this.pool, async (client): Promise<{ status: PlanStatus; events: PlanEvent[] }> => {
      // A refusal (the command's signature did not verify) rejects the plan whatever its steps.
      const problems = refusal ? [refusal] : validatePlan(spec);
      if (!problems.length) problems.push(...(await usedRequestIds(client, spec)));
      const status: PlanStatus = problems.length ? 'REJECTED' : 'RUNNING';
      const detail = problems.length ? problems.join('; ') : null;
      const inserted = await client.query(
        `INSERT INTO arbiter.plans (plan_id, agent_id, status, detail, deadline, reason, incident_id, parent_request_id, finished_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, CASE WHEN $3 = 'RUNNING' THEN NULL ELSE now() END)
         ON CONFLICT (plan_id) DO NOTHING RETURNING plan_id`,
        [spec.planId, spec.agentId, status, detail, toDate(spec.deadline), spec.reason, spec.incidentId, spec.parentRequestId],
      );
      if (!inserted.rowCount) {
        const { rows } = await client.query('SELECT status FROM arbiter.plans WHERE plan_id = $1', [spec.planId]);
        return { status: rows[0].status as PlanStatus, events: [] as PlanEvent[] };
      }
      if (status === 'REJECTED') {
        const events = await this.write(client, spec.planId, spec.agentId, { status, steps: [], release: [], events: [{ type: 'REJECTED', step: null, stepStatus: null, detail }] }, spec, [], now, 'RUNNING');
        return { status, events };
      }
      for (const s of spec.steps) {
        await client.query(
          `INSERT INTO arbiter.plan_steps (plan_id, step, request_id, action, resource_arn, params, after_steps, status)
           VALUES ($1, $2, $3, $4, $5, $6, $7, 'WAITING')`,
          [spec.planId, s.step, s.requestId, s.action, s.resourceArn, JSON.stringify(s.params), s.after],
        );
      }
      const state: PlanState = { status, deadline: spec.deadline, steps: spec.steps.map((step) => ({ step, status: 'WAITING', detail: null })) };
      const first = advancePlan(state, { now });
      first.events.unshift({ type: 'SUBMITTED', step: null, stepStatus: null, detail: `${spec.steps.length} steps${spec.reason ? `: ${spec.reason}` : ''}` });
      const events = await this.write(client, spec.planId, spec.agentId, first, spec, spec.steps, now, 'RUNNING');
      return { status: first.status, events };
    }).then(({ status, events }) => {
      this.onEvents(events);
      return status;
    });
  }

  /** Records an agent's cancellation; the plan ends CANCELLED on this call (or the relay's next pass). */
  async requestCancel(planId: string, by: string, reason: string | null, now: number = Date.now()): Promise<PlanStatus | null> {
    const { rows } = await this.pool.query(
      `UPDATE arbiter.plans SET cancel_requested = $2 WHERE plan_id = $1 AND status = 'RUNNING' AND cancel_requested IS NULL RETURNING status`,
      [planId, JSON.stringify({ by, reason })],
    );
    if (!rows.length) return (await this.summary(planId))?.status ?? null;
    await this.advance(planId, now);
    return (await this.summary(planId))?.status ?? null;
  }

  /** Plans with something to do: a released step that has an outcome, a passed deadline, a cancellation. */
  async plansWithWork(now: number = Date.now(), limit = 200): Promise<string[]> {
    const { rows } = await this.pool.query(
      `SELECT plan_id FROM (
         SELECT s.plan_id FROM arbiter.plan_steps s
           JOIN arbiter.request_status r ON r.request_id = s.request_id
           LEFT JOIN arbiter.request_state p ON p.request_id = r.primary_request_id
          WHERE s.status = 'RELEASED' AND r.final AND (r.status <> 'COALESCED' OR p.final IS NOT FALSE)
         UNION
         SELECT plan_id FROM arbiter.plans
          WHERE status = 'RUNNING' AND (deadline <= $1 OR cancel_requested IS NOT NULL)
       ) work LIMIT $2`,
      [new Date(now), limit],
    );
    return rows.map((r) => r.plan_id as string);
  }

  /**
   * One pass of the state machine over one plan, under its row lock (a plan another relay is
   * advancing is skipped, not waited for). Returns null when skipped.
   */
  async advance(planId: string, now: number = Date.now()): Promise<PlanTransition | null> {
    let events: PlanEvent[] = [];
    const transition = await inTransaction(this.pool, async (client) => {
      const plan = await client.query(
        `SELECT agent_id, status, deadline, reason, incident_id, cancel_requested FROM arbiter.plans WHERE plan_id = $1 FOR UPDATE SKIP LOCKED`,
        [planId],
      );
      const row = plan.rows[0];
      // A plan that ended (cancelled, failed) still records what its released steps did.
      if (!row) return null;
      const steps = await this.loadSteps(client, planId);
      const state: PlanState = { status: row.status, deadline: row.deadline ? row.deadline.getTime() : null, steps };
      const input: PlanInput = { now, finished: await this.finishedSteps(client, planId) };
      if (row.cancel_requested) input.cancel = row.cancel_requested;
      const transition = advancePlan(state, input);
      const spec = { deadline: state.deadline, reason: row.reason as string | null, incidentId: row.incident_id as string | null };
      events = await this.write(client, planId, row.agent_id, transition, spec, steps.map((s) => s.step), now, row.status);
      return transition;
    });
    this.onEvents(events);
    return transition;
  }

  /**
   * Publishes unpublished outbox rows in order, through `publish`, and marks them published in the
   * same transaction. One relay at a time (an advisory lock): a plan's events are never reordered.
   * A relay that dies after publishing and before committing publishes those rows again next time:
   * step requests are idempotent by request id, events carry their seq.
   */
  async relayOutbox(publish: (rows: OutboxRow[]) => Promise<void>, limit = 500): Promise<number> {
    return inTransaction(this.pool, async (client) => {
      const lock = await client.query('SELECT pg_try_advisory_xact_lock($1) AS ok', [OUTBOX_LOCK]);
      if (!lock.rows[0].ok) return 0;
      const { rows } = await client.query(
        'SELECT id, plan_id, kind, payload FROM arbiter.plan_outbox WHERE published_at IS NULL ORDER BY id LIMIT $1',
        [limit],
      );
      if (!rows.length) return 0;
      await publish(rows.map((r) => ({ id: Number(r.id), planId: r.plan_id, kind: r.kind, payload: r.payload })));
      await client.query('UPDATE arbiter.plan_outbox SET published_at = now() WHERE id = ANY($1::bigint[])', [rows.map((r) => r.id)]);
      return rows.length;
    });
  }

  async summary(planId: string): Promise<PlanSummary | null> {
    const { rows } = await this.pool.query('SELECT * FROM arbiter.plans WHERE plan_id = $1', [planId]);
    if (!rows[0]) return null;
    const steps = await this.loadSteps(this.pool, planId);
    return { ...summaryOf(rows[0]), steps: steps.map((s) => ({ ...s.step, status: s.status, detail: s.detail })) };
  }

  async events(planId: string): Promise<PlanEvent[]> {
    const { rows } = await this.pool.query(
      `SELECT e.*, p.agent_id, s.action, s.resource_arn FROM arbiter.plan_events e JOIN arbiter.plans p USING (plan_id)
         LEFT JOIN arbiter.plan_steps s ON s.plan_id = e.plan_id AND s.step = e.step
        WHERE e.plan_id = $1 ORDER BY e.seq`,
      [planId],
    );
    return rows.map((r) => ({
      planId: r.plan_id,
      seq: Number(r.seq),
      agentId: r.agent_id,
      type: r.type,
      planStatus: r.plan_status,
      step: r.step,
      requestId: r.request_id,
      action: r.action,
      resourceArn: r.resource_arn,
      stepStatus: r.step_status,
      detail: r.detail,
      at: r.at.getTime(),
    }));
  }

  async list(options: { status?: string; agentId?: string; limit?: number } = {}): Promise<Array<Omit<PlanSummary, 'steps'> & { steps: number; executed: number }>> {
    const { rows } = await this.pool.query(
      `SELECT p.*, count(s.*)::int AS steps, (count(s.*) FILTER (WHERE s.status = 'EXECUTED'))::int AS executed
         FROM arbiter.plans p LEFT JOIN arbiter.plan_steps s USING (plan_id)
        WHERE ($1::text IS NULL OR p.status = $1) AND ($2::text IS NULL OR p.agent_id = $2)
        GROUP BY p.plan_id ORDER BY p.created_at DESC LIMIT $3`,
      [options.status ?? null, options.agentId ?? null, options.limit ?? 50],
    );
    return rows.map((r) => ({ ...summaryOf(r), steps: r.steps, executed: r.executed }));
  }

  private async loadSteps(client: pg.Pool | pg.PoolClient, planId: string): Promise<PlanState['steps']> {
    const { rows } = await client.query('SELECT * FROM arbiter.plan_steps WHERE plan_id = $1 ORDER BY step', [planId]);
    return rows.map((r) => ({
      step: { step: r.step, requestId: r.request_id, action: r.action, resourceArn: r.resource_arn, params: r.params, after: r.after_steps },
      status: r.status,
      detail: r.detail,
    }));
  }

  /** Released steps whose request has its final outcome; a coalesced one counts as its primary did. */
  private async finishedSteps(client: pg.PoolClient, planId: string): Promise<StepFinish[]> {
    const { rows } = await client.query(
      `SELECT s.step, r.status, r.detail, r.primary_request_id, p.status AS primary_status, p.detail AS primary_detail
         FROM arbiter.plan_steps s
         JOIN arbiter.request_status r ON r.request_id = s.request_id
         LEFT JOIN arbiter.request_state p ON p.request_id = r.primary_request_id
        WHERE s.plan_id = $1 AND s.status = 'RELEASED' AND r.final AND (r.status <> 'COALESCED' OR p.final IS NOT FALSE)`,
      [planId],
    );
    return rows.map((r) =>
      r.status === 'COALESCED' && r.primary_status
        ? { step: r.step, status: r.primary_status as FinalStatus, detail: `coalesced into ${r.primary_request_id}: ${r.primary_detail ?? r.primary_status}` }
        : { step: r.step, status: r.status as FinalStatus, detail: r.detail },
    );
  }

  private async write(
    client: pg.PoolClient,
    planId: string,
    agentId: string,
    t: PlanTransition,
    spec: Pick<PlanSpec, 'deadline' | 'reason' | 'incidentId'>,
    allSteps: readonly PlanStep[],
    now: number,
    previousStatus: PlanStatus,
  ): Promise<PlanEvent[]> {
    for (const s of t.steps) {
      await client.query(
        `UPDATE arbiter.plan_steps SET status = $3, detail = $4,
                released_at = CASE WHEN $3 = 'RELEASED' THEN now() ELSE released_at END,
                finished_at = CASE WHEN $3 NOT IN ('WAITING', 'RELEASED') THEN now() ELSE finished_at END
          WHERE plan_id = $1 AND step = $2`,
        [planId, s.step.step, s.status, s.detail],
      );
    }
    for (const step of t.release) {
      const dependsOn = step.after.map((i) => allSteps.find((s) => s.step === i)!.requestId);
      const request = stepRequest(planId, agentId, step, spec, dependsOn, now);
      await client.query(`INSERT INTO arbiter.plan_outbox (plan_id, kind, payload) VALUES ($1, 'request', $2)`, [planId, JSON.stringify(request)]);
    }
    if (!t.events.length) return [];
    // The plan's detail says why it ended; a step finishing after that does not overwrite it.
    const ending = t.status !== previousStatus ? (t.events.at(-1)?.detail ?? null) : null;
    const seqRow = await client.query(
      `UPDATE arbiter.plans SET next_seq = next_seq + $2, status = $3, updated_at = now(),
              detail = COALESCE($4, detail), finished_at = CASE WHEN $3 = 'RUNNING' THEN NULL ELSE COALESCE(finished_at, now()) END
        WHERE plan_id = $1 RETURNING next_seq - $2 AS first`,
      [planId, t.events.length, t.status, ending],
    );
    let seq = Number(seqRow.rows[0].first);
    const written: PlanEvent[] = [];
    for (const e of t.events) {
      const event: PlanEvent = {
        planId,
        seq: seq++,
        agentId,
        type: e.type,
        planStatus: t.status,
        step: e.step?.step ?? null,
        requestId: e.step?.requestId ?? null,
        action: e.step?.action ?? null,
        resourceArn: e.step?.resourceArn ?? null,
        stepStatus: e.stepStatus,
        detail: e.detail,
        at: now,
      };
      await client.query(
        `INSERT INTO arbiter.plan_events (plan_id, seq, type, plan_status, step, request_id, step_status, detail, at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
        [planId, event.seq, event.type, event.planStatus, event.step, event.requestId, event.stepStatus, event.detail, new Date(now)],
      );
      await client.query(`INSERT INTO arbiter.plan_outbox (plan_id, kind, payload) VALUES ($1, 'event', $2)`, [planId, JSON.stringify(event)]);
      written.push(event);
    }
    return written;
  }
}

function stepRequest(
  planId: string,
  agentId: string,
  step: PlanStep,
  spec: Pick<PlanSpec, 'deadline' | 'reason' | 'incidentId'>,
  dependsOn: string[],
  now: number,
): RemediationRequest {
  return buildRequest(
    {
      requestId: step.requestId,
      agentId,
      resourceArn: step.resourceArn,
      action: step.action,
      params: step.params,
      // Released only after these executed; the worker checks them again, so order holds twice over.
      dependsOn,
      planId,
      step: step.step,
      deadline: spec.deadline,
      reason: spec.reason,
      incidentId: spec.incidentId,
    },
    now,
  );
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- a pg row
function summaryOf(r: Record<string, any>): Omit<PlanSummary, 'steps'> {
  return {
    planId: r.plan_id,
    agentId: r.agent_id,
    status: r.status,
    detail: r.detail,
    deadline: r.deadline ? r.deadline.getTime() : null,
    parentRequestId: r.parent_request_id,
    createdAt: r.created_at.getTime(),
    finishedAt: r.finished_at ? r.finished_at.getTime() : null,
  };
}

/** A step's request id must be new: one already decided (or in another plan) would never run as this step. */
async function usedRequestIds(client: pg.PoolClient, spec: PlanSpec): Promise<string[]> {
  const ids = spec.steps.map((s) => s.requestId);
  const { rows } = await client.query(
    `SELECT request_id FROM arbiter.plan_steps WHERE request_id = ANY($1::uuid[]) AND plan_id <> $2
     UNION SELECT request_id FROM arbiter.request_status WHERE request_id = ANY($1::uuid[])`,
    [ids, spec.planId],
  );
  return rows.map((r) => `request id ${r.request_id} is already used by another request`);
}

function toDate(ms: number | null): Date | null {
  return ms === null ? null : new Date(ms);
}
