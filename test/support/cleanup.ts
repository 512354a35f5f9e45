import { Kafka, logLevel } from 'kafkajs';
import { endpoints } from './endpoints.ts';

/** Every registry call has its own limit: a hung registry fails the cleanup, naming the call, instead of the hook timing out. */
const REGISTRY_CALL_TIMEOUT_MS = 10_000;
/** How long the broker may take to delete the topics (it answers once the controller has). */
const DELETE_TOPICS_TIMEOUT_MS = 30_000;

/**
 * Runs every step, even after one fails (each removes something else), then throws one error
 * naming each failure. A test file's cleanup must not stop at the first problem, nor hide it:
 * what a test leaves behind on the shared Kafka, registry and PostgreSQL stays there for good.
 */
export async function cleanUp(what: string, steps: Array<() => unknown>): Promise<void> {
  const failures: unknown[] = [];
  for (const step of steps) {
    try {
      await step();
    } catch (error) {
      failures.push(error);
    }
  }
  if (failures.length > 0) {
    const reasons = failures.map((f) => (f instanceof Error ? f.message : String(f))).join('; ');
    throw new AggregateError(failures, `cleaning up ${what}: ${failures.length} step(s) failed: ${reasons}`);
  }
}

/**
 * What a test set-up made, and how to undo each piece, recorded as it is made: undo() removes all of
 * it, newest first. guard() runs the set-up itself and, if that throws half-way, undoes what it had
 * made before rethrowing — no test would ever tear down an environment it never got.
 */
export class Teardown {
  private readonly steps: Array<() => unknown> = [];

  constructor(private readonly what: string) {}

  add(step: () => unknown): void {
    this.steps.push(step);
  }

  /** Undoes everything added so far (each step once: a second call finds nothing left to do). */
  undo(): Promise<void> {
    return cleanUp(this.what, this.steps.splice(0).reverse());
  }

  async guard<T>(setUp: () => Promise<T>): Promise<T> {
    try {
      return await setUp();
    } catch (error) {
      await this.undo().catch(() => undefined);
      throw error;
    }
  }
}

/**
 * Removes what Arbiter installations — everything named with their topic prefixes — left on the
 * shared Kafka and schema registry: their topics (`<prefix>.requests`, `.outcomes`, …) and those
 * topics' subjects (`<prefix>.requests-value`, …). Both are found by listing, not by assuming
 * which exist: a test may have registered only some subjects, and a worker creates all four topics.
 * Call it once nothing uses them any more (workers and clients stopped): a client still producing
 * could bring a topic back.
 */
export async function removeInstallation(...prefixes: string[]): Promise<void> {
  if (prefixes.length === 0) return;
  const ours = (name: string) => prefixes.some((prefix) => name.startsWith(`${prefix}.`));
  await cleanUp(`installation ${prefixes.join(', ')}`, [
    async () => {
      const admin = new Kafka({ clientId: 'test-cleanup', brokers: [endpoints.kafkaBrokers], logLevel: logLevel.NOTHING }).admin();
      await admin.connect();
      try {
        const topics = (await admin.listTopics()).filter(ours);
        if (topics.length > 0) await admin.deleteTopics({ topics, timeout: DELETE_TOPICS_TIMEOUT_MS });
      } finally {
        await admin.disconnect();
      }
    },
    async () => {
      // deleted=true lists soft-deleted subjects too: a cleanup interrupted between its two steps
      // leaves one, and only the permanent delete frees it.
      const listed = await registry('GET', '/subjects?deleted=true');
      const subjects = ((await listed.json()) as string[]).filter(ours);
      for (const subject of subjects) {
        // The Confluent API's two steps: a soft delete, then the permanent one. 404 on the first
        // means it was already soft-deleted.
        for (const query of ['', '?permanent=true']) {
          const response = await registry('DELETE', `/subjects/${encodeURIComponent(subject)}${query}`, [404]);
          await response.body?.cancel();
        }
      }
    },
  ]);
}

async function registry(method: 'GET' | 'DELETE', path: string, alsoFine: number[] = []): Promise<Response> {
  // The registry keeps its schemas in PostgreSQL: after a test restarted PostgreSQL, its next call
  // on each pooled connection the restart killed answers 500 (one per connection, and it pools
  // several: CI saw two in a row). A 5xx is tried again, up to 10 times, 1 s apart.
  for (let attempt = 1; ; attempt++) {
    const response = await fetch(`${endpoints.schemaRegistryUrl}${path}`, { method, signal: AbortSignal.timeout(REGISTRY_CALL_TIMEOUT_MS) }).catch(
      (error: unknown) => {
        throw new Error(`${method} ${path} on the schema registry failed: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
      },
    );
    if (response.ok || alsoFine.includes(response.status)) return response;
    if (response.status >= 500 && attempt < 10) {
      await response.body?.cancel();
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      continue;
    }
    throw new Error(`${method} ${path} on the schema registry answered ${response.status}: ${await response.text()}`);
  }
}
