import type pg from 'pg';
import { ArbiterError } from '../contract/errors.ts';
import type { Report, ReportColumn, ReportFilters, ReportRow, ReportSection } from './report-format.ts';

type Queryable = pg.Pool | pg.PoolClient | pg.Client;

/**
 * The `arbiter audit` reports. Each reads only the analyst views (migrations 0002 and 0008), so a
 * report runs as well under the narrow role `arbiter_analyst` as under the owner.
 */
export const REPORT_NAMES = ['timeline', 'contention', 'ttl-expirations', 'inconsistencies', 'coalescing', 'conflicts', 'agents'] as const;
export type ReportName = (typeof REPORT_NAMES)[number];

/** The views the analyst role may read: every one the reports use, and the older ones of 0002/0006. */
export const ANALYST_VIEWS = [
  'resource_timeline',
  'lock_contention',
  'lock_contention_events',
  'lock_contention_pairs',
  'ttl_expirations',
  'ttl_expiration_durations',
  'inconsistency_findings',
  'coalescing',
  'coalesced_requests',
  'conflicts',
  'agent_activity',
  'final_outcomes',
  'plan_progress',
] as const;

export const FINDING_STATUSES = ['open', 'acknowledged', 'resolved'] as const;

export const DEFAULT_REPORT_LIMIT = 1_000;

export function isReportName(name: string): name is ReportName {
  return (REPORT_NAMES as readonly string[]).includes(name);
}

/** Runs one report with its filters: the sections it prints, each at most `limit` rows. */
export async function runReport(db: Queryable, name: ReportName, filters: ReportFilters = {}): Promise<Report> {
  validate(name, filters);
  const limit = filters.limit ?? DEFAULT_REPORT_LIMIT;
  const sections = await REPORTS[name](db, filters, limit);
  return { report: name, filters: { ...filters, limit }, sections };
}

function validate(name: ReportName, f: ReportFilters): void {
  if (f.since && f.until && f.since.getTime() >= f.until.getTime()) {
    throw new ArbiterError('INVALID_REQUEST', `--since (${f.since.toISOString()}) must be before --until (${f.until.toISOString()})`);
  }
  if (f.limit !== undefined && (!Number.isInteger(f.limit) || f.limit < 1)) throw new ArbiterError('INVALID_REQUEST', '--limit is a whole number of rows, at least 1');
  if (name === 'timeline' && f.arn === undefined && f.agent === undefined) {
    throw new ArbiterError('INVALID_REQUEST', 'timeline needs --arn (everything that happened to a resource) or --agent (everything an agent did)');
  }
  if (name !== 'inconsistencies' && (f.status !== undefined || f.kind !== undefined)) {
    throw new ArbiterError('INVALID_REQUEST', '--status and --kind filter the inconsistencies report only');
  }
  if (f.status !== undefined && !(FINDING_STATUSES as readonly string[]).includes(f.status)) {
    throw new ArbiterError('INVALID_REQUEST', `--status is one of ${FINDING_STATUSES.join(', ')}, not "${f.status}"`);
  }
}

/**
 * A WHERE clause from the filters that apply: the time column, the columns an agent may appear
 * in (any of them matches), the resource column, and extra equalities. Values go as parameters.
 */
class Where {
  readonly params: unknown[] = [];
  private readonly terms: string[] = [];

  constructor(f: ReportFilters, columns: { time: string; agent?: readonly string[]; agentArray?: string; arn?: string }) {
    if (f.since) this.terms.push(`${columns.time} >= ${this.param(f.since)}`);
    if (f.until) this.terms.push(`${columns.time} < ${this.param(f.until)}`);
    if (f.agent !== undefined) {
      const p = this.param(f.agent);
      const any = [...(columns.agent ?? []).map((c) => `${c} = ${p}`), ...(columns.agentArray ? [`${p} = ANY (${columns.agentArray})`] : [])];
      this.terms.push(`(${any.join(' OR ')})`);
    }
    if (f.arn !== undefined && columns.arn) this.terms.push(`${columns.arn} = ${this.param(f.arn)}`);
  }

  param(value: unknown): string {
    this.params.push(value);
    return `$${this.params.length}`;
  }

  and(term: string): this {
    this.terms.push(term);
    return this;
  }

  toString(): string {
    return this.terms.length ? `WHERE ${this.terms.join(' AND ')}` : '';
  }
}

async function section(
  db: Queryable,
  meta: { name: string; title: string; columns: readonly ReportColumn[] },
  sql: (where: Where, limit: string) => string,
  where: Where,
  limit: number,
): Promise<ReportSection> {
  const limitParam = where.param(limit + 1);
  const { rows } = await db.query(sql(where, limitParam), where.params);
  return { ...meta, rows: rows.slice(0, limit) as ReportRow[], truncated: rows.length > limit };
}

const col = (key: string, header: string, type: ReportColumn['type'] = 'text'): ReportColumn => ({ key, header, type });

type ReportRunner = (db: Queryable, f: ReportFilters, limit: number) => Promise<ReportSection[]>;

/** Kinds in the order they happen when they share a timestamp (one transaction writes a request and its decision). */
const KIND_ORDER = `CASE kind WHEN 'request' THEN 0 WHEN 'lock' THEN 1 WHEN 'execution' THEN 2 WHEN 'decision' THEN 3 WHEN 'observation' THEN 4 ELSE 5 END`;

const timeline: ReportRunner = async (db, f, limit) => {
  const columns = [
    col('at', 'at', 'time'),
    ...(f.arn === undefined ? [col('resourceArn', 'resource')] : []),
    col('kind', 'kind'),
    col('status', 'status/event'),
    col('action', 'action'),
    col('agent', 'agent'),
    col('requestId', 'request'),
    col('resourceVersion', 'version', 'number'),
    col('fencingToken', 'token', 'number'),
    col('detail', 'detail'),
    col('ref', 'ref'),
  ];
  const where = new Where(f, { time: 'at', agent: ['agent_id'], arn: 'resource_arn' });
  return [
    await section(
      db,
      { name: 'timeline', title: f.arn ? `Timeline of ${f.arn}` : `Timeline of agent ${f.agent}`, columns },
      (w, n) => `
        SELECT at, resource_arn AS "resourceArn", kind, status, action, agent_id AS agent, request_id AS "requestId",
               resource_version AS "resourceVersion", fencing_token AS "fencingToken", detail, ref
          FROM arbiter.resource_timeline ${w}
         ORDER BY at, ${KIND_ORDER}
         LIMIT ${n}`,
      where,
      limit,
    ),
  ];
};

const contention: ReportRunner = async (db, f, limit) => {
  const filter = () => new Where(f, { time: 'at', agent: ['waiting', 'holding'], arn: 'resource_arn' });
  const byResource = await section(
    db,
    {
      name: 'byResource',
      title: 'Lock contention by resource',
      columns: [
        col('resourceArn', 'resource'),
        col('failedAcquires', 'failed acquires', 'number'),
        col('holders', 'holders', 'list'),
        col('waiters', 'waiters', 'list'),
        col('pairs', 'pairs', 'number'),
        col('firstAt', 'first', 'time'),
        col('lastAt', 'last', 'time'),
      ],
    },
    (w, n) => `
      SELECT resource_arn AS "resourceArn", count(*)::int AS "failedAcquires",
             array_agg(DISTINCT holding ORDER BY holding) AS holders, array_agg(DISTINCT waiting ORDER BY waiting) AS waiters,
             count(DISTINCT (holding, waiting))::int AS pairs, min(at) AS "firstAt", max(at) AS "lastAt"
        FROM arbiter.lock_contention_events ${w}
       GROUP BY resource_arn
       ORDER BY count(*) DESC, resource_arn
       LIMIT ${n}`,
    filter(),
    limit,
  );
  const byPair = await section(
    db,
    {
      name: 'byPair',
      title: 'Lock contention by agent pair (who held, who waited)',
      columns: [
        col('holding', 'held by'),
        col('waiting', 'waited'),
        col('failedAcquires', 'failed acquires', 'number'),
        col('resources', 'resources', 'number'),
        col('resourceArns', 'on', 'list'),
        col('firstAt', 'first', 'time'),
        col('lastAt', 'last', 'time'),
      ],
    },
    (w, n) => `
      SELECT holding, waiting, count(*)::int AS "failedAcquires", count(DISTINCT resource_arn)::int AS resources,
             (array_agg(DISTINCT resource_arn ORDER BY resource_arn))[1:20] AS "resourceArns",
             min(at) AS "firstAt", max(at) AS "lastAt"
        FROM arbiter.lock_contention_events ${w}
       GROUP BY holding, waiting
       ORDER BY count(*) DESC, holding, waiting
       LIMIT ${n}`,
    filter(),
    limit,
  );
  return [byResource, byPair];
};

const ttlExpirations: ReportRunner = async (db, f, limit) => {
  const filter = () => new Where(f, { time: 'expired_at', agent: ['agent'], arn: 'resource_arn' });
  const byAgent = await section(
    db,
    {
      name: 'byAgent',
      title: 'TTL expirations by agent',
      columns: [
        col('agent', 'agent'),
        col('expirations', 'expirations', 'number'),
        col('resources', 'resources', 'number'),
        col('avgHeldMs', 'avg held', 'duration'),
        col('maxHeldMs', 'max held', 'duration'),
        col('avgTtlMs', 'avg TTL', 'duration'),
        col('renewals', 'renewals', 'number'),
        col('lastAt', 'last', 'time'),
      ],
    },
    (w, n) => `
      SELECT agent, count(*)::int AS expirations, count(DISTINCT resource_arn)::int AS resources,
             round(avg(held_ms))::bigint AS "avgHeldMs", max(held_ms) AS "maxHeldMs", round(avg(ttl_ms))::bigint AS "avgTtlMs",
             sum(renewals)::int AS renewals, max(expired_at) AS "lastAt"
        FROM arbiter.ttl_expiration_durations ${w}
       GROUP BY agent
       ORDER BY count(*) DESC, agent
       LIMIT ${n}`,
    filter(),
    limit,
  );
  const expirations = await section(
    db,
    {
      name: 'expirations',
      title: 'Each expiration: held how long against its TTL',
      columns: [
        col('agent', 'agent'),
        col('resourceArn', 'resource'),
        col('fencingToken', 'token', 'number'),
        col('acquiredAt', 'acquired', 'time'),
        col('heldMs', 'held', 'duration'),
        col('ttlMs', 'TTL', 'duration'),
        col('renewals', 'renewals', 'number'),
        col('expiresAt', 'lapsed', 'time'),
        col('expiredAt', 'recorded', 'time'),
        col('reapedMs', 'recorded after', 'duration'),
        col('owner', 'owner'),
      ],
    },
    (w, n) => `
      SELECT agent, resource_arn AS "resourceArn", fencing_token AS "fencingToken", acquired_at AS "acquiredAt",
             held_ms AS "heldMs", ttl_ms AS "ttlMs", renewals::int AS renewals, expires_at AS "expiresAt",
             expired_at AS "expiredAt", reaped_ms AS "reapedMs", owner
        FROM arbiter.ttl_expiration_durations ${w}
       ORDER BY agent, expired_at
       LIMIT ${n}`,
    filter(),
    limit,
  );
  return [byAgent, expirations];
};

const inconsistencies: ReportRunner = async (db, f, limit) => {
  const where = new Where(f, { time: 'detected_at', agentArray: 'agents', arn: 'resource_arn' });
  if (f.status !== undefined) where.and(`status = ${where.param(f.status)}`);
  if (f.kind !== undefined) where.and(`kind = ${where.param(f.kind)}`);
  return [
    await section(
      db,
      {
        name: 'findings',
        title: 'Inconsistency findings',
        columns: [
          col('detectedAt', 'detected', 'time'),
          col('findingId', 'finding'),
          col('kind', 'kind'),
          col('status', 'status'),
          col('resourceArn', 'resource'),
          col('agents', 'agents', 'list'),
          col('detail', 'detail'),
          col('evidence', 'evidence', 'json'),
          col('requestIds', 'requests', 'list'),
          col('acknowledgedBy', 'by'),
          col('acknowledgedAt', 'acknowledged', 'time'),
          col('resolvedAt', 'resolved', 'time'),
          col('note', 'note'),
        ],
      },
      (w, n) => `
        SELECT detected_at AS "detectedAt", finding_id AS "findingId", kind, status, resource_arn AS "resourceArn", agents, detail,
               evidence, request_ids::text[] AS "requestIds", acknowledged_by AS "acknowledgedBy", acknowledged_at AS "acknowledgedAt",
               resolved_at AS "resolvedAt", note
          FROM arbiter.inconsistency_findings ${w}
         ORDER BY detected_at, finding_id
         LIMIT ${n}`,
      where,
      limit,
    ),
  ];
};

const coalescing: ReportRunner = async (db, f, limit) => [
  await section(
    db,
    {
      name: 'primaries',
      title: 'Requests that absorbed duplicates',
      columns: [
        col('primaryRequestId', 'primary request'),
        col('primaryAgent', 'primary agent'),
        col('resourceArn', 'resource'),
        col('action', 'action'),
        col('coalesced', 'coalesced', 'number'),
        col('agents', 'coalesced agents', 'list'),
        col('firstAt', 'first', 'time'),
        col('lastAt', 'last', 'time'),
      ],
    },
    (w, n) => `
      SELECT primary_request_id AS "primaryRequestId", primary_agent_id AS "primaryAgent", resource_arn AS "resourceArn", action,
             count(*)::int AS coalesced, array_agg(DISTINCT agent_id ORDER BY agent_id) AS agents,
             min(decided_at) AS "firstAt", max(decided_at) AS "lastAt"
        FROM arbiter.coalesced_requests ${w}
       GROUP BY primary_request_id, primary_agent_id, resource_arn, action
       ORDER BY min(decided_at), primary_request_id
       LIMIT ${n}`,
    new Where(f, { time: 'decided_at', agent: ['agent_id', 'primary_agent_id'], arn: 'resource_arn' }),
    limit,
  ),
];

const conflicts: ReportRunner = async (db, f, limit) => {
  const filter = () => new Where(f, { time: 'decided_at', agent: ['agent_id', 'rival_agent_id'], arn: 'resource_arn' });
  const rejections = await section(
    db,
    {
      name: 'rejections',
      title: 'Requests rejected stale or conflicting, and the change they lost to',
      columns: [
        col('decidedAt', 'at', 'time'),
        col('status', 'status'),
        col('agent', 'agent'),
        col('action', 'action'),
        col('resourceArn', 'resource'),
        col('resourceVersion', 'version', 'number'),
        col('rivalAgent', 'rival agent'),
        col('rivalAction', 'rival action'),
        col('rivalRequestId', 'rival request'),
        col('requestId', 'request'),
        col('detail', 'detail'),
      ],
    },
    (w, n) => `
      SELECT decided_at AS "decidedAt", status, agent_id AS agent, action, resource_arn AS "resourceArn", resource_version AS "resourceVersion",
             rival_agent_id AS "rivalAgent", rival_action AS "rivalAction", rival_request_id AS "rivalRequestId", request_id AS "requestId", detail
        FROM arbiter.conflicts ${w}
       ORDER BY decided_at, request_id
       LIMIT ${n}`,
    filter(),
    limit,
  );
  const byPair = await section(
    db,
    {
      name: 'byPair',
      title: 'Rejections by agent pair (rejected, rival)',
      columns: [
        col('agent', 'rejected agent'),
        col('rivalAgent', 'rival agent'),
        col('stale', 'stale', 'number'),
        col('conflict', 'conflict', 'number'),
        col('resources', 'resources', 'number'),
        col('firstAt', 'first', 'time'),
        col('lastAt', 'last', 'time'),
      ],
    },
    (w, n) => `
      SELECT agent_id AS agent, rival_agent_id AS "rivalAgent",
             count(*) FILTER (WHERE status = 'REJECTED_STALE')::int AS stale,
             count(*) FILTER (WHERE status = 'REJECTED_CONFLICT')::int AS conflict,
             count(DISTINCT resource_arn)::int AS resources, min(decided_at) AS "firstAt", max(decided_at) AS "lastAt"
        FROM arbiter.conflicts ${w}
       GROUP BY agent_id, rival_agent_id
       ORDER BY count(*) DESC, agent_id, rival_agent_id NULLS LAST
       LIMIT ${n}`,
    filter(),
    limit,
  );
  return [rejections, byPair];
};

/** agent_activity facts that name another agent: the races. */
const RACES = ['coalesced_into', 'absorbed', 'rejected_after', 'caused_rejection', 'lock_waited', 'lock_blocked'];

interface ActivityGroup {
  agent: string;
  activity: string;
  action: string | null;
  status: string | null;
  other: string | null;
  n: number;
  firstAt: Date;
  lastAt: Date;
}

const agents: ReportRunner = async (db, f, limit) => {
  const where = new Where(f, { time: 'at', agent: ['agent_id'], arn: 'resource_arn' }).and('agent_id IS NOT NULL');
  const { rows } = await db.query<ActivityGroup>(
    `SELECT agent_id AS agent, activity, action, status, other_agent AS other, count(*)::int AS n,
            min(at) AS "firstAt", max(at) AS "lastAt"
       FROM arbiter.agent_activity ${where}
      GROUP BY agent_id, activity, action, status, other_agent
      ORDER BY agent_id, array_position(${where.param(['requested', 'outcome', ...RACES, 'lock_expired'])}::text[], activity),
               other_agent NULLS LAST, action, status`,
    where.params,
  );
  type Summary = {
    agent: string;
    requests: number;
    asked: Record<string, number>;
    got: Record<string, number>;
    racedWith: Record<string, Record<string, number>>;
    lockWaits: number;
    lockBlocks: number;
    lockExpirations: number;
    firstAt: Date;
    lastAt: Date;
  };
  const summaries = new Map<string, Summary>();
  const bump = (counts: Record<string, number>, key: string, n: number) => (counts[key] = (counts[key] ?? 0) + n);
  const rivals = new Map<string, ActivityGroup>();
  for (const g of rows) {
    let s = summaries.get(g.agent);
    if (!s) {
      s = { agent: g.agent, requests: 0, asked: {}, got: {}, racedWith: {}, lockWaits: 0, lockBlocks: 0, lockExpirations: 0, firstAt: g.firstAt, lastAt: g.lastAt };
      summaries.set(g.agent, s);
    }
    if (g.firstAt < s.firstAt) s.firstAt = g.firstAt;
    if (g.lastAt > s.lastAt) s.lastAt = g.lastAt;
    if (g.activity === 'requested') {
      s.requests += g.n;
      bump(s.asked, g.action ?? '?', g.n);
    } else if (g.activity === 'outcome') bump(s.got, g.status ?? '?', g.n);
    else if (g.activity === 'lock_waited') s.lockWaits += g.n;
    else if (g.activity === 'lock_blocked') s.lockBlocks += g.n;
    else if (g.activity === 'lock_expired') s.lockExpirations += g.n;
    if (RACES.includes(g.activity)) {
      if (g.other !== null) bump((s.racedWith[g.other] ??= {}), g.activity, g.n);
      // The rivals section: one row per (agent, other agent, relation), actions and statuses summed.
      const key = JSON.stringify([g.agent, g.other, g.activity]);
      const r = rivals.get(key);
      if (!r) rivals.set(key, { ...g });
      else {
        r.n += g.n;
        if (g.firstAt < r.firstAt) r.firstAt = g.firstAt;
        if (g.lastAt > r.lastAt) r.lastAt = g.lastAt;
      }
    }
  }
  const agentRows = [...summaries.values()].sort((a, b) => b.requests - a.requests || a.agent.localeCompare(b.agent));
  const rivalRows = [...rivals.values()]
    .sort((a, b) => a.agent.localeCompare(b.agent) || b.n - a.n || (a.other ?? '').localeCompare(b.other ?? '') || a.activity.localeCompare(b.activity))
    .map((r) => ({ agent: r.agent, otherAgent: r.other, relation: r.activity, count: r.n, firstAt: r.firstAt, lastAt: r.lastAt }));
  return [
    {
      name: 'agents',
      title: 'What each agent asked, got, and whom it raced with',
      columns: [
        col('agent', 'agent'),
        col('requests', 'requests', 'number'),
        col('asked', 'asked (by action)', 'counts'),
        col('got', 'got (final statuses)', 'counts'),
        col('racedWith', 'raced with', 'counts'),
        col('lockWaits', 'lock waits', 'number'),
        col('lockBlocks', 'held others off', 'number'),
        col('lockExpirations', 'lock expirations', 'number'),
        col('firstAt', 'first', 'time'),
        col('lastAt', 'last', 'time'),
      ],
      rows: agentRows.slice(0, limit),
      truncated: agentRows.length > limit,
    },
    {
      name: 'rivals',
      title: 'Races by agent pair: coalesced_into/absorbed, rejected_after/caused_rejection, lock_waited/lock_blocked',
      columns: [
        col('agent', 'agent'),
        col('otherAgent', 'with'),
        col('relation', 'relation'),
        col('count', 'count', 'number'),
        col('firstAt', 'first', 'time'),
        col('lastAt', 'last', 'time'),
      ],
      rows: rivalRows.slice(0, limit),
      truncated: rivalRows.length > limit,
    },
  ];
};

const REPORTS: Record<ReportName, ReportRunner> = {
  timeline,
  contention,
  'ttl-expirations': ttlExpirations,
  inconsistencies,
  coalescing,
  conflicts,
  agents,
};
