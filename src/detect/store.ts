import type pg from 'pg';
import type { ResourceObservation } from '../contract/observation.ts';
import { inTransaction } from '../db/index.ts';
import { isRequestId } from '../decide/index.ts';
import type { ArbiterView, Finding } from './rules.ts';

export interface RecordedFinding extends Finding {
  findingId: string;
  scope: string | null;
  detectedAt: number;
}

/** The detector's reads and writes in PostgreSQL: observations in, findings out, each once. */
export class DetectionStore {
  constructor(private readonly pool: pg.Pool) {}

  /** Appends observations to arbiter.observations and brings arbiter.observed_state up to date. */
  async storeObservations(items: Array<{ observation: ResourceObservation; scope: string }>): Promise<void> {
    if (!items.length) return;
    for (const { observation: o, scope } of items) {
      await this.pool.query(
        `INSERT INTO arbiter.observations (observation_id, resource_arn, scope, source, version, state, observed_at, effective_request_ids, recent_changes)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
        [o.observationId, o.resourceArn, scope, o.source, o.version, safeJson(o.state), new Date(o.observedAt), o.effectiveRequestIds, JSON.stringify(o.recentChanges)],
      );
    }
  }

  /** What Arbiter knows about the observed resource: its last verified change, the observer's request ids it decided, the previous observation. */
  async viewFor(o: ResourceObservation, conflictWindowMs: number): Promise<ArbiterView> {
    const ids = [...new Set([...o.recentChanges.map((c) => c.requestId), ...(o.effectiveRequestIds ?? [])])].filter(isRequestId);
    const [state, decided, previous] = await Promise.all([
      this.pool.query('SELECT version, last_request_id, last_action, last_agent_id FROM arbiter.resource_state WHERE resource_arn = $1', [o.resourceArn]),
      ids.length ? this.pool.query('SELECT request_id FROM arbiter.request_status WHERE request_id = ANY($1::uuid[])', [ids]) : Promise.resolve({ rows: [] }),
      this.pool.query('SELECT observation_id, version, effective_request_ids FROM arbiter.observed_state WHERE resource_arn = $1', [o.resourceArn]),
    ]);
    const s = state.rows[0];
    const p = previous.rows[0];
    return {
      lastVerified: s?.last_request_id ? { version: Number(s.version), requestId: s.last_request_id, action: s.last_action, agentId: s.last_agent_id } : null,
      decidedByArbiter: new Set(decided.rows.map((r: { request_id: string }) => r.request_id)),
      previous: p ? { observationId: p.observation_id, version: p.version === null ? null : Number(p.version), effectiveRequestIds: p.effective_request_ids } : null,
      conflictWindowMs,
    };
  }

  /** The observation becomes the one the next is compared with (a late, older one does not). */
  async noteObserved(o: ResourceObservation): Promise<void> {
    await this.pool.query(
      `INSERT INTO arbiter.observed_state (resource_arn, observation_id, version, effective_request_ids, observed_at) VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT (resource_arn) DO UPDATE SET observation_id = EXCLUDED.observation_id, version = EXCLUDED.version,
              effective_request_ids = EXCLUDED.effective_request_ids, observed_at = EXCLUDED.observed_at
        WHERE arbiter.observed_state.observed_at <= EXCLUDED.observed_at`,
      [o.resourceArn, o.observationId, o.version, o.effectiveRequestIds, new Date(o.observedAt)],
    );
  }

  /** Records each finding not recorded before (by fingerprint); returns the new ones. */
  async record(findings: Finding[], scope: string | null): Promise<RecordedFinding[]> {
    const recorded: RecordedFinding[] = [];
    for (const f of findings) {
      const row = await inTransaction(this.pool, async (client) => {
        const fresh = await client.query(
          `INSERT INTO arbiter.inconsistency_fingerprints (fingerprint, finding_id) VALUES ($1, gen_random_uuid()) ON CONFLICT DO NOTHING RETURNING finding_id, at`,
          [f.fingerprint],
        );
        if (!fresh.rowCount) return null;
        const { finding_id: findingId, at } = fresh.rows[0];
        await client.query(
          `INSERT INTO arbiter.inconsistencies (finding_id, fingerprint, resource_arn, scope, kind, expected, observed, request_ids, detail, evidence, detected_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
          [findingId, f.fingerprint, f.resourceArn, scope, f.kind, JSON.stringify(f.evidence.versions), JSON.stringify({ observationIds: f.evidence.observationIds }), f.requestIds.filter(isRequestId), f.detail, JSON.stringify(f.evidence), at],
        );
        return { ...f, findingId, scope, detectedAt: at.getTime() } satisfies RecordedFinding;
      });
      if (row) recorded.push(row);
    }
    return recorded;
  }

  /**
   * stale_observation: resources someone observes, that Arbiter changed more than `staleMs` ago,
   * and that nobody has observed since: nobody knows whether the change is still there. (A
   * resource never observed at all is not one: an installation without observers is not stale.)
   */
  async staleObservations(staleMs: number, limit = 500): Promise<Finding[]> {
    const { rows } = await this.pool.query(
      `SELECT r.resource_arn, r.version, r.last_request_id, r.last_action, r.last_agent_id, r.updated_at, o.observed_at, o.observation_id
         FROM arbiter.resource_state r JOIN arbiter.observed_state o USING (resource_arn)
        WHERE r.updated_at < now() - make_interval(secs => $1::double precision / 1000)
          AND o.observed_at < r.updated_at
        LIMIT $2`,
      [staleMs, limit],
    );
    return rows.map((r) => ({
      kind: 'stale_observation' as const,
      resourceArn: r.resource_arn,
      fingerprint: `stale_observation:${r.resource_arn}:${r.version}`,
      detail: `not observed since Arbiter's ${r.last_action} ${r.last_request_id} made it version ${r.version} at ${r.updated_at.toISOString()}`,
      requestIds: r.last_request_id ? [r.last_request_id] : [],
      evidence: {
        agents: r.last_agent_id ? [r.last_agent_id] : [],
        versions: { arbiter: Number(r.version) },
        observationIds: r.observation_id ? [r.observation_id] : [],
        lastObservedAt: r.observed_at ? r.observed_at.toISOString() : null,
      },
    }));
  }
}

/** The observation's state text as JSON; text that is not a JSON object is kept, wrapped. */
function safeJson(text: string): string {
  try {
    const parsed = JSON.parse(text);
    return JSON.stringify(typeof parsed === 'object' && parsed !== null ? parsed : { value: parsed });
  } catch {
    return JSON.stringify({ unparsed: text.slice(0, 10_000) });
  }
}
