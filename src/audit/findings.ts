import type pg from 'pg';
import { ArbiterError } from '../contract/errors.ts';

type Queryable = pg.Pool | pg.PoolClient | pg.Client;

export interface FindingAck {
  findingId: string;
  /** Who acknowledges (a person or a team): recorded in acknowledged_by. */
  by: string;
  note?: string;
  /** Mark it resolved (the inconsistency was repaired), not only acknowledged. */
  resolve?: boolean;
}

export interface AcknowledgedFinding {
  findingId: string;
  resourceArn: string;
  kind: string;
  status: 'acknowledged' | 'resolved';
  acknowledgedBy: string;
  acknowledgedAt: Date;
  resolvedAt: Date | null;
  note: string | null;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * `arbiter audit ack`: marks an inconsistency finding acknowledged (someone is on it) or resolved,
 * recording by whom, when and an optional note (a note given replaces the previous one; none
 * keeps it). acknowledged_by/at name the last person who acted on it. A resolved finding stays
 * resolved: acknowledging or resolving it again is refused, so its record is never overwritten.
 * Needs UPDATE on arbiter.inconsistencies: the workers' or an operator's role, not arbiter_analyst.
 */
export async function acknowledgeFinding(db: Queryable, ack: FindingAck): Promise<AcknowledgedFinding> {
  if (!UUID.test(ack.findingId)) throw new ArbiterError('INVALID_REQUEST', `"${ack.findingId}" is not a finding id (a UUID, as \`arbiter audit inconsistencies\` shows)`);
  if (ack.by.trim() === '') throw new ArbiterError('INVALID_REQUEST', '--by names who acknowledges the finding');
  let rows: Record<string, unknown>[];
  try {
    ({ rows } = await db.query(
      `UPDATE arbiter.inconsistencies
          SET status = CASE WHEN $3 THEN 'resolved' ELSE 'acknowledged' END,
              acknowledged_by = $2, acknowledged_at = now(),
              resolved_at = CASE WHEN $3 THEN now() ELSE resolved_at END,
              note = coalesce($4, note)
        WHERE finding_id = $1 AND status <> 'resolved'
        RETURNING finding_id, resource_arn, kind, status, acknowledged_by, acknowledged_at, resolved_at, note`,
      [ack.findingId, ack.by, Boolean(ack.resolve), ack.note ?? null],
    ));
  } catch (error) {
    if ((error as { code?: string }).code === '42501') {
      throw new ArbiterError(
        'UNAUTHORIZED',
        'this database role may not update arbiter.inconsistencies: acknowledge findings with the workers\' or an operator\'s role (arbiter_analyst only reads)',
        { cause: error },
      );
    }
    throw error;
  }
  if (rows.length > 0) return toAck(rows[0]!);
  const { rows: found } = await db.query(
    'SELECT status, acknowledged_by, resolved_at FROM arbiter.inconsistencies WHERE finding_id = $1 LIMIT 1',
    [ack.findingId],
  );
  if (found.length === 0) throw new ArbiterError('INVALID_REQUEST', `no inconsistency finding with id ${ack.findingId}`);
  const f = found[0]!;
  throw new ArbiterError(
    'INVALID_REQUEST',
    `finding ${ack.findingId} is resolved already (by ${f.acknowledged_by ?? 'someone'} at ${(f.resolved_at as Date | null)?.toISOString() ?? '?'})`,
  );
}

function toAck(r: Record<string, unknown>): AcknowledgedFinding {
  return {
    findingId: r.finding_id as string,
    resourceArn: r.resource_arn as string,
    kind: r.kind as string,
    status: r.status as AcknowledgedFinding['status'],
    acknowledgedBy: r.acknowledged_by as string,
    acknowledgedAt: r.acknowledged_at as Date,
    resolvedAt: (r.resolved_at as Date | null) ?? null,
    note: (r.note as string | null) ?? null,
  };
}
