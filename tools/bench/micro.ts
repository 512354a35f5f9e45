import { coalesceKey } from '../../src/coalesce/index.ts';
import type { RemediationOutcome, Serde } from '../../src/index.ts';
import { compileScopeRules, DEFAULT_SCOPE_RULES, tryParseArn } from '../../src/routing/index.ts';
import type { EncodedStorm } from './storm.ts';

export interface MicroResult {
  /** µs per record, single-threaded, in this process. */
  serdeDecodeRequestUs: number;
  serdeEncodeOutcomeUs: number;
  /** ARN parse + scope rules + coalesce key: the pure part of an arrival decision. */
  routingAndKeyUs: number;
}

async function timeIt(n: number, fn: (i: number) => unknown): Promise<number> {
  const started = performance.now();
  for (let i = 0; i < n; i++) {
    const result = fn(i);
    if (result instanceof Promise) await result;
  }
  return ((performance.now() - started) * 1000) / n;
}

/** What one record costs in each step of intake that is pure CPU, measured on the storm's own records. */
export async function runMicro(serde: Serde, storm: EncodedStorm, samples = 2_000): Promise<MicroResult> {
  const n = Math.min(samples, storm.count);
  const value = (i: number) => storm.values[i % storm.count]!;
  // Warm up (schema fetches, JIT).
  for (let i = 0; i < 50; i++) await serde.decodeRequest(value(i));
  const serdeDecodeRequestUs = await timeIt(n, (i) => serde.decodeRequest(value(i)));

  const request = await serde.decodeRequest(value(0));
  const outcome: RemediationOutcome = {
    requestId: request.requestId,
    agentId: request.agentId,
    resourceArn: request.resourceArn,
    action: request.action,
    scope: 'scope',
    status: 'COALESCED',
    final: true,
    primaryRequestId: request.requestId,
    resourceVersion: 2,
    fencingToken: 1,
    detail: `coalesced into ${request.requestId}, which ended EXECUTED: restarted; restarts=1`,
    requestedAt: request.requestedAt,
    decidedAt: Date.now(),
    completedAt: Date.now(),
    workerId: 'bench',
  };
  const serdeEncodeOutcomeUs = await timeIt(n * 5, () => serde.encodeOutcome(outcome));

  const scopes = compileScopeRules(DEFAULT_SCOPE_RULES);
  const arns = storm.pods.map((p) => p.arn);
  const routingAndKeyUs = await timeIt(n * 10, (i) => {
    const arn = arns[i % arns.length]!;
    const parsed = tryParseArn(arn);
    if (parsed.ok) scopes.scopeOf(parsed.arn);
    return coalesceKey(arn, 'restart', {});
  });
  return { serdeDecodeRequestUs, serdeEncodeOutcomeUs, routingAndKeyUs };
}
