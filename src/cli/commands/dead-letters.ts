import type { Command } from 'commander';
import type { DeadLetter } from '../../audit/index.ts';
import { ArbiterError } from '../../contract/errors.ts';
import { kafkaSecurityOptions } from '../../contract/kafka-client.ts';
import { parseTimeFilter } from '../../contract/time-filter.ts';
import { configFrom, printJson, runCommand, withConfigOption } from '../shared.ts';

interface DeadLetterOptions {
  config?: string;
  since?: Date;
  until?: Date;
  includeReplayed?: boolean;
  limit: number;
  source: string;
  json?: boolean;
  dryRun?: boolean;
}

/**
 * `arbiter dead-letters list|replay`: what the worker could not decode or store, and — once the
 * cause is fixed (a registry that lost its schemas, a bug) — the same records sent again.
 */
export default function register(program: Command): void {
  const deadLetters = program.command('dead-letters').description('records the worker dead-lettered: list them, replay them');
  const common = (command: Command) =>
    withConfigOption(command)
      .option('--since <time>', 'recorded at or after (ISO 8601, or a duration ago: 90s, 15m, 2h, 1d)', parseTime)
      .option('--until <time>', 'recorded before (same forms)', parseTime)
      .option('--limit <n>', 'at most this many', (v) => Number.parseInt(v, 10), 1_000)
      .option('--source <topic>', 'the topic they came from: requests, plan-commands or observations', 'requests')
      .option('--json', 'print JSON');

  common(deadLetters.command('list'))
    .description('dead letters of a topic (--source; the requests topic by default), oldest first')
    .option('--include-replayed', 'show those replayed already too (default: all are shown)', true)
    .argument('[ids...]', 'only these ids')
    .action((ids: string[], options: DeadLetterOptions) =>
      runCommand(async () => {
        const letters = await withStore(options, (store) => store.list(selection(ids, options, false)));
        if (options.json) return printJson(letters.map(describe));
        const { renderTable } = await import('../table.ts');
        const cells = letters.map((d) => [
          d.id,
          d.recordedAt.toISOString(),
          `${d.partition}:${d.offset}`,
          d.errorCode,
          d.error.length > 80 ? `${d.error.slice(0, 77)}...` : d.error,
          d.replayedAt === null ? '-' : `${d.replayedAt.toISOString()} (${d.replayCount}x)`,
        ]);
        console.log(renderTable(['id', 'recorded', 'partition:offset', 'code', 'error', 'replayed'], cells));
      }),
    );

  common(deadLetters.command('replay'))
    .description('re-publish dead letters to the requests topic (their own key, value and headers), marking each replayed')
    .argument('[ids...]', 'these ids (else: the time range given with --since/--until)')
    .option('--include-replayed', 'by time range, also those replayed before')
    .option('--dry-run', 'show what would be replayed, send nothing')
    .action((ids: string[], options: DeadLetterOptions) =>
      runCommand(async () => {
        if (ids.length === 0 && options.since === undefined && options.until === undefined) {
          throw new ArbiterError('INVALID_REQUEST', 'name dead letters to replay: ids, or a time range with --since/--until');
        }
        const replayed = await withStore(options, async (store) => {
          const letters = await store.list(selection(ids, options, true));
          const missing = ids.filter((id) => !letters.some((d) => d.id === id));
          if (missing.length > 0) throw new ArbiterError('INVALID_REQUEST', `no dead letter with id ${missing.join(', ')} on ${store.topic}`);
          if (!options.dryRun) await store.replay(letters);
          return letters;
        });
        if (options.json) return printJson({ replayed: replayed.map((d) => d.id), dryRun: Boolean(options.dryRun) });
        const verb = options.dryRun ? 'would replay' : 'replayed';
        console.log(`${verb} ${replayed.length} dead letter(s)${replayed.length > 0 ? `: ${replayed.map((d) => d.id).join(', ')}` : ''}`);
      }),
    );
}

function selection(ids: string[], options: DeadLetterOptions, replaying: boolean) {
  for (const id of ids) if (!/^\d+$/.test(id)) throw new ArbiterError('INVALID_REQUEST', `a dead letter id is a number, not "${id}"`);
  return {
    ...(ids.length > 0 ? { ids } : {}),
    ...(options.since ? { since: options.since } : {}),
    ...(options.until ? { until: options.until } : {}),
    // A replay by time range sends each record once, unless asked again; ids are replayed as named.
    notReplayed: replaying && ids.length === 0 && !options.includeReplayed,
    limit: options.limit,
  };
}

async function withStore<T>(
  options: DeadLetterOptions,
  work: (store: Awaited<ReturnType<typeof openDeadLetterStore>>) => Promise<T>,
): Promise<T> {
  const store = await openDeadLetterStore(options);
  try {
    return await work(store);
  } finally {
    await store.close();
  }
}

async function openDeadLetterStore(options: DeadLetterOptions) {
  const config = await configFrom(options);
  const [{ createPool }, { listDeadLetters }, { topicNames }, { replayDeadLetters }] = await Promise.all([
    import('../../db/index.ts'),
    import('../../audit/index.ts'),
    import('../../contract/topics.ts'),
    import('../dead-letter-replay.ts'),
  ]);
  const names = topicNames(config.kafka.topicPrefix);
  const sources = { requests: names.requests, 'plan-commands': names.planCommands, observations: names.observations } as const;
  const topic = sources[options.source as keyof typeof sources];
  if (!topic) throw new ArbiterError('INVALID_REQUEST', `--source must be one of ${Object.keys(sources).join(', ')}, not "${options.source}"`);
  const db = createPool(config.databaseUrl, 2);
  db.on('error', () => undefined);
  return {
    topic,
    list: (s: ReturnType<typeof selection>) => listDeadLetters(db, { topic, ...s }),
    replay: (letters: DeadLetter[]) => replayDeadLetters({ db, brokers: [...config.kafka.brokers], security: kafkaSecurityOptions(config), topic, letters }),
    close: () => db.end(),
  };
}

function describe(d: DeadLetter) {
  return {
    id: d.id,
    recordedAt: d.recordedAt.toISOString(),
    topic: d.topic,
    partition: d.partition,
    offset: d.offset,
    errorCode: d.errorCode,
    error: d.error,
    workerId: d.workerId,
    replayedAt: d.replayedAt?.toISOString() ?? null,
    replayCount: d.replayCount,
    key: d.key?.toString('utf8') ?? null,
    valueBytes: d.value?.length ?? 0,
    headers: Object.keys(d.headers),
  };
}

function parseTime(text: string): Date {
  return parseTimeFilter(text);
}
