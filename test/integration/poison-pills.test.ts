import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RemediationOutcome } from '../../src/agent-sdk/index.ts';
import { buildRequest, type RemediationRequest } from '../../src/contract/request.ts';
import { eventually, type TestEnv } from '../support/harness.ts';
import { startStormEnv, type StormEnv } from '../support/storm.ts';
import { finalsByRequest, readOutcomes } from '../support/outcomes.ts';

/**
 * Records that decode but are malformed, interleaved with 1,000 valid requests from a plain Kafka
 * producer: none may stall its partition or crash a consumer; each poison pill is answered
 * (REJECTED_INVALID) or dead-lettered within 5 s, and each valid request gets exactly one answer.
 */

const VALID = 1_000;
const ANSWER_BOUND_MS = 5_000;

describe('poison pills among 1,000 valid requests', () => {
  let storm: StormEnv;
  let env: TestEnv;
  beforeAll(async () => {
    storm = await startStormEnv(20, { config: { deferral: { recheckMs: 100 } } });
    env = storm.env;
  });
  afterAll(async () => storm?.stop());
  const send = (records: Array<{ key: string; request: RemediationRequest }>) => storm.send(records);

  it('every poison pill is answered or dead-lettered within 5 s; every valid request exactly once; no consumer crash', async () => {
    const { pod, scope } = storm;
    const valid = Array.from({ length: VALID }, (_, i) => ({ key: scope(i), request: storm.restart(i) }));
    const upper = randomUUID().toUpperCase();
    const poison: Array<{ name: string; key: string; request: RemediationRequest; expect: 'dead-letter' | RegExp }> = [
      { name: 'non-UUID request id', key: scope(1), request: { ...buildRequest({ agentId: 'p', resourceArn: pod(1), action: 'restart' }), requestId: 'req-42' }, expect: 'dead-letter' },
      { name: 'NUL in reason', key: scope(2), request: buildRequest({ agentId: 'p', resourceArn: pod(2), action: 'restart', reason: 'oom\0' }), expect: /NUL characters are not allowed \(in reason\)/ },
      { name: 'NUL in params', key: scope(3), request: buildRequest({ agentId: 'p', resourceArn: pod(3), action: 'restart', params: { grace: '\0' } }), expect: /in params/ },
      { name: 'deadline 9e15', key: scope(4), request: buildRequest({ agentId: 'p', resourceArn: pod(4), action: 'restart', deadline: 9e15 }), expect: /deadline .* is not a valid time/ },
      { name: 'requestedAt 9e15', key: scope(5), request: buildRequest({ agentId: 'p', resourceArn: pod(5), action: 'restart', requestedAt: 9e15 }), expect: /requestedAt .* is not a valid time/ },
      { name: '600 KB reason', key: scope(6), request: buildRequest({ agentId: 'p', resourceArn: pod(6), action: 'restart', reason: 'x'.repeat(600_000) }), expect: /reason takes 600000 bytes/ },
      { name: 'empty ARN', key: '', request: buildRequest({ agentId: 'p', resourceArn: '', action: 'restart' }), expect: /invalid resourceArn/ },
      { name: 'upper-case UUID', key: scope(7), request: buildRequest({ requestId: upper, agentId: 'p', resourceArn: pod(7), action: 'restart', params: { upper: 'yes' } }), expect: /^/ },
    ];

    // Interleaved: a poison pill every 100 valid records, the upper-case one sent twice (a redelivery).
    const client = await env.client('poison-watcher');
    const sentAt = new Map<string, number>();
    const answers = new Map<string, Promise<RemediationOutcome>>();
    const watch = (id: string) => answers.set(id, client.awaitOutcome(id, { timeoutMs: 120_000 }));
    for (const r of [...valid.map((v) => v.request), ...poison.map((p) => p.request)]) watch(r.requestId);
    for (let i = 0; i < VALID; i += 100) {
      const pill = poison[i / 100];
      const batch = [...valid.slice(i, i + 100)];
      if (pill) batch.splice(50, 0, pill);
      if (pill?.name === 'upper-case UUID') batch.push(pill);
      for (const p of batch.filter((b) => poison.includes(b as never))) sentAt.set(p.request.requestId, Date.now());
      await send(batch);
    }

    // Each pill: answered (or dead-lettered) within the bound.
    for (const pill of poison) {
      if (pill.expect === 'dead-letter') {
        const row = await eventually(
          async () => (await env.db.query("SELECT error_code, error FROM arbiter.dead_letters WHERE error = 'requestId is not a UUID'")).rows[0],
          ANSWER_BOUND_MS,
          `the dead letter of the ${pill.name}`,
        );
        expect(row.error_code).toBe('INVALID_REQUEST');
        const outcome = await answers.get(pill.request.requestId)!;
        expect(outcome.status).toBe('REJECTED_INVALID');
        continue;
      }
      const outcome = await answers.get(pill.request.requestId)!;
      if (pill.name === 'upper-case UUID') {
        // A valid request, queued behind its scope's restarts: what matters is that its redelivery
        // was recognised (one final decision, checked below), not how soon its turn came.
        expect(outcome.status).toBe('EXECUTED');
        expect(outcome.requestId).toBe(upper.toLowerCase());
      } else {
        const tookMs = outcome.decidedAt - sentAt.get(pill.request.requestId)!;
        expect(tookMs, `${pill.name} answered after ${tookMs} ms`).toBeLessThan(ANSWER_BOUND_MS);
        expect(outcome.status, pill.name).toBe('REJECTED_INVALID');
        expect(outcome.detail, pill.name).toMatch(pill.expect as RegExp);
      }
    }

    // Every valid request: one final decision in the audit trail, EXECUTED.
    const outcomes = await Promise.all(valid.map((v) => answers.get(v.request.requestId)!));
    expect(outcomes.filter((o) => o.status !== 'EXECUTED').map((o) => `${o.status}: ${o.detail}`)).toEqual([]);
    const ids = [...valid.map((v) => v.request.requestId), upper.toLowerCase()];
    const { rows } = await env.db.query('SELECT request_id, count(*)::int AS n FROM arbiter.decisions WHERE final AND request_id = ANY($1::uuid[]) GROUP BY 1', [ids]);
    expect(rows.filter((r) => r.n !== 1)).toEqual([]);
    expect(rows).toHaveLength(ids.length);
    expect(env.sim.fleet.stats().executions.restart).toBe(VALID + 1);

    // What was stored of the pills is bounded and NUL-free.
    const { rows: stored } = await env.db.query("SELECT max(octet_length(reason))::int AS longest FROM arbiter.requests WHERE agent_id = 'p'");
    expect(stored[0].longest).toBeLessThanOrEqual(8_192 * 4);

    // No consumer ever crashed or restarted.
    for (const w of env.workers) {
      expect(w.running()).toBe(true);
      expect(w.output()).not.toMatch(/crash|Restarting the consumer/i);
    }
  });

  it('a reused requestId with another payload is answered REJECTED_DUPLICATE_ID; the same payload again is a redelivery, answered again', async () => {
    const pod = storm.pod(0, 1);
    const original = buildRequest({ agentId: 'agent-dup', resourceArn: pod, action: 'restart', reason: 'first' });
    const client = await env.client('dup-watcher');
    const answered = client.awaitOutcome(original.requestId, { timeoutMs: 60_000 });
    await send([{ key: storm.scope(0), request: original }]);
    expect((await answered).status).toBe('EXECUTED');

    // The same id for a different restart, and the original itself again (a redelivery).
    await send([
      { key: storm.scope(0), request: { ...original, reason: 'second, reusing the id' } },
      { key: storm.scope(0), request: original },
    ]);
    const row = await eventually(
      async () => (await env.db.query("SELECT error FROM arbiter.dead_letters WHERE error_code = 'DUPLICATE_REQUEST_ID'")).rows[0],
      10_000,
      'the reused id dead-lettered',
    );
    expect(row.error).toContain(`requestId ${original.requestId} was already used for a different request`);
    const finals = await eventually(async () => {
      const byId = finalsByRequest(await readOutcomes(env.prefix)).get(original.requestId) ?? [];
      return byId.length >= 3 ? byId : undefined;
    }, 10_000, 'the duplicate id and the redelivery answered');
    // In record order: the reuse refused; the redelivery told its stored answer again (an answer
    // decided on arrival has no outbox flag, so a redelivered record is always answered).
    expect(finals.map((o) => o.status)).toEqual(['EXECUTED', 'REJECTED_DUPLICATE_ID', 'EXECUTED']);
    expect(finals[2]!.resourceVersion).toBe(finals[0]!.resourceVersion);
    const { rows } = await env.db.query('SELECT count(*)::int AS n FROM arbiter.decisions WHERE final AND request_id = $1', [original.requestId]);
    expect(rows[0].n).toBe(1); // neither the reuse nor the redelivery was decided again
    expect(env.sim.fleet.observe(pod).appliedRequestIds.filter((id) => id === original.requestId)).toHaveLength(1);
  });
});
