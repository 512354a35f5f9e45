import { Option, type Command } from 'commander';
import type { ReportFilters, ReportName } from '../../audit/index.ts';
import type { Pool } from '../../db/index.ts';
import { configFrom, printJson, runCommand, withConfigOption } from '../shared.ts';

interface ReportOptions {
  config?: string;
  since?: string;
  until?: string;
  agent?: string;
  arn?: string;
  status?: string;
  kind?: string;
  limit: number;
  section?: string;
  json?: boolean;
  csv?: boolean;
}

interface AckOptions {
  config?: string;
  by: string;
  note?: string;
  resolve?: boolean;
  json?: boolean;
}

/** What each report answers (its sections are named in --help and docs/AUDIT.md). */
const REPORTS: Record<ReportName, { description: string; sections: string }> = {
  timeline: {
    description: 'everything that happened to a resource (--arn), or that an agent did (--agent), in order',
    sections: 'timeline',
  },
  contention: {
    description: 'failed lock acquisitions by resource and by agent pair: who held, who waited',
    sections: 'byResource, byPair',
  },
  'ttl-expirations': {
    description: 'locks that expired unreleased, by agent: how long each was held against its TTL',
    sections: 'byAgent, expirations',
  },
  inconsistencies: {
    description: 'findings of the inconsistency detector, with status and evidence',
    sections: 'findings',
  },
  coalescing: {
    description: 'requests that absorbed duplicates, and whose',
    sections: 'primaries',
  },
  conflicts: {
    description: 'requests rejected stale or conflicting, with the change (and agent) they lost to',
    sections: 'rejections, byPair',
  },
  agents: {
    description: 'per agent: what it asked, what it got, and whom it raced with',
    sections: 'agents, rivals',
  },
};

/**
 * `arbiter audit <report>`: the analysts' reports over the audit views (they run under the
 * read-only role arbiter_analyst), as a table, JSON or CSV; `arbiter audit ack` acknowledges or
 * resolves an inconsistency finding (an operator's role: it writes).
 */
export default function register(program: Command): void {
  const audit = program
    .command('audit')
    .description('analysts\' reports on the audit trail (table, --json, --csv), and `ack` for inconsistency findings');

  for (const [name, spec] of Object.entries(REPORTS) as Array<[ReportName, (typeof REPORTS)[ReportName]]>) {
    const command = withConfigOption(audit.command(name))
      .description(`${spec.description} (sections: ${spec.sections})`)
      .option('--since <time>', 'at or after (ISO 8601, or a duration ago: 90s, 15m, 2h, 1d, 1w)')
      .option('--until <time>', 'before (same forms)')
      .option('--agent <id>', 'only what involves this agent')
      .option('--arn <arn>', 'only this resource');
    if (name === 'inconsistencies') {
      command.option('--status <status>', 'open, acknowledged or resolved').option('--kind <kind>', 'drift, lost_change, conflicting_commits, …');
    }
    command
      .option('--limit <n>', 'at most this many rows per section', (v) => Number.parseInt(v, 10), 1_000)
      .option('--section <name>', `only this section (${spec.sections}); CSV prints one section, the first by default`)
      .addOption(new Option('--json', 'print JSON').conflicts('csv'))
      .option('--csv', 'print CSV (RFC 4180)')
      .action((options: ReportOptions) => runCommand(() => printReport(name, options)));
  }

  withConfigOption(audit.command('ack'))
    .description('acknowledge an inconsistency finding (or resolve it with --resolve), recording by whom, when and a note')
    .argument('<id>', 'the finding id (`arbiter audit inconsistencies` shows them)')
    .requiredOption('--by <who>', 'who acknowledges it')
    .option('--note <text>', 'what was found or done')
    .option('--resolve', 'mark it resolved, not only acknowledged')
    .option('--json', 'print JSON')
    .action((id: string, options: AckOptions) =>
      runCommand(async () => {
        const { acknowledgeFinding } = await import('../../audit/index.ts');
        const finding = await withDb(options, (db) =>
          acknowledgeFinding(db, { findingId: id, by: options.by, resolve: Boolean(options.resolve), ...(options.note !== undefined ? { note: options.note } : {}) }),
        );
        if (options.json) return printJson(finding);
        console.log(`${finding.status} finding ${finding.findingId} (${finding.kind} on ${finding.resourceArn}) by ${finding.acknowledgedBy}`);
      }),
    );
}

async function printReport(name: ReportName, options: ReportOptions): Promise<void> {
  const { runReport, parseTimeFilter, pickSections, tableCells, toCsv, toJson } = await import('../../audit/index.ts');
  const filters: ReportFilters = {
    ...(options.since !== undefined ? { since: parseTimeFilter(options.since) } : {}),
    ...(options.until !== undefined ? { until: parseTimeFilter(options.until) } : {}),
    ...(options.agent !== undefined ? { agent: options.agent } : {}),
    ...(options.arn !== undefined ? { arn: options.arn } : {}),
    ...(options.status !== undefined ? { status: options.status } : {}),
    ...(options.kind !== undefined ? { kind: options.kind } : {}),
    limit: options.limit,
  };
  const report = await withDb(options, (db) => runReport(db, name, filters));
  const sections = pickSections(report, options.section);
  if (options.json) return printJson(toJson({ ...report, sections }));
  if (options.csv) {
    const [first] = sections;
    if (sections.length > 1) process.stderr.write(`arbiter: CSV of section ${first!.name}; --section ${sections.slice(1).map((s) => s.name).join('|')} for the others\n`);
    process.stdout.write(toCsv(first!));
    if (first!.truncated) process.stderr.write(`arbiter: only the first ${options.limit} rows; raise --limit for more\n`);
    return;
  }
  const { renderTable } = await import('../table.ts');
  const out: string[] = [];
  for (const section of sections) {
    out.push(`${section.title}:`);
    if (section.rows.length === 0) out.push('  (none)');
    else {
      out.push(renderTable(section.columns.map((c) => c.header), section.rows.map((row) => tableCells(section, row))));
      if (section.truncated) out.push(`  (the first ${options.limit} rows; raise --limit for more)`);
    }
    out.push('');
  }
  process.stdout.write(out.join('\n'));
}

async function withDb<T>(options: { config?: string }, work: (db: Pool) => Promise<T>): Promise<T> {
  const config = await configFrom(options);
  const { createPool } = await import('../../db/index.ts');
  const db = createPool(config.databaseUrl, 1);
  db.on('error', () => undefined);
  try {
    return await work(db);
  } finally {
    await db.end();
  }
}
