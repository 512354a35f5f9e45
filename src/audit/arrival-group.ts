import { NextTurn } from '../contract/next-turn.ts';
import type { ArrivalWrite } from './arrivals.ts';
import type { ArrivalRow, DeadLetterRow } from './rows.ts';

export interface ArrivalBatch {
  arrivals: readonly ArrivalRow[];
  deadLetters: readonly DeadLetterRow[];
}

type Write = (batch: ArrivalBatch) => Promise<ArrivalWrite>;

interface Waiting {
  batch: ArrivalBatch;
  resolve(result: ArrivalWrite): void;
  reject(error: unknown): void;
}

/** Rows per combined statement: large enough to amortise a statement, small enough to stay quick. */
const MAX_ROWS = 4_000;

/**
 * Group commit of arrival writes. A worker decides its partitions' chunks concurrently; the chunks
 * that become ready while a write is running go to PostgreSQL together in the next one (one
 * statement, one commit), so a statement's fixed cost — planning, binding, the WAL flush — is
 * shared by many chunks under load, while at low load the chunks of one fetch go together.
 *
 * A combined write that meets a known id writes nothing (see writeArrivals): each chunk is told
 * which of its own ids were known, and chunks with none are written again on their own. A combined
 * write that PostgreSQL refuses is retried chunk by chunk, so the refusal reaches only the chunk
 * that holds the bad record.
 */
export class ArrivalGroup {
  private waiting: Waiting[] = [];
  private running = 0;
  /** A write starts on the next turn, so that the chunks of one fetch go in one statement. */
  private readonly starter = new NextTurn(() => {
    if (this.waiting.length && this.running < this.concurrency) void this.drain();
  });

  constructor(
    private readonly write: Write,
    /** Combined writes in flight at once (each on its own connection). */
    private readonly concurrency = 2,
  ) {}

  add(batch: ArrivalBatch): Promise<ArrivalWrite> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ batch, resolve, reject });
      if (this.running < this.concurrency) this.starter.request();
    });
  }

  private async drain(): Promise<void> {
    this.running++;
    try {
      while (this.waiting.length) await this.writeGroup(this.takeGroup());
    } finally {
      this.running--;
    }
  }

  private takeGroup(): Waiting[] {
    const group: Waiting[] = [];
    let rows = 0;
    while (this.waiting.length) {
      const next = this.waiting[0]!;
      const size = next.batch.arrivals.length + next.batch.deadLetters.length;
      if (group.length && rows + size > MAX_ROWS) break;
      group.push(this.waiting.shift()!);
      rows += size;
    }
    return group;
  }

  private async writeGroup(group: Waiting[]): Promise<void> {
    if (group.length === 1) {
      const [only] = group;
      await this.write(only!.batch).then(only!.resolve, only!.reject);
      return;
    }
    let result: ArrivalWrite;
    try {
      result = await this.write({ arrivals: group.flatMap((g) => g.batch.arrivals), deadLetters: group.flatMap((g) => g.batch.deadLetters) });
    } catch {
      // Which chunk's record was refused (or was it the connection)? Each chunk finds out alone.
      await Promise.all(group.map((g) => this.write(g.batch).then(g.resolve, g.reject)));
      return;
    }
    if (result.kind === 'written') {
      for (const g of group) g.resolve(result);
      return;
    }
    const known = result.known;
    await Promise.all(
      group.map((g) => {
        const mine = new Map(g.batch.arrivals.flatMap((a) => (known.has(a.request.requestId) ? [[a.request.requestId, known.get(a.request.requestId)!] as const] : [])));
        if (mine.size) return g.resolve({ kind: 'known', known: mine });
        return this.write(g.batch).then(g.resolve, g.reject);
      }),
    );
  }
}
