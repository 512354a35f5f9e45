import type { KeyObject } from 'node:crypto';
import type { RemediationRequest } from '../contract/request.ts';
import { verifyValue } from '../contract/signing.ts';

/** The signature rules, compiled from the config (`signatures`). */
export interface SignatureRules {
  /** Every agent must sign, except those `unsignedAllowed` names (for migration). */
  required: boolean;
  unsignedAllowed(agentId: string): boolean;
  /** The agent's registered public key, if any: an agent with a key must always sign. */
  keyOf(agentId: string): KeyObject | null;
  /** Arbiter's own keys: it signs the steps of plans it accepted on an agent's behalf. */
  arbiterKeys: readonly KeyObject[];
  /** A signed request older (or newer) than this by the worker's clock is a replay. */
  maxAgeMs: number;
}

export type Authentication = { ok: true; signedBy: 'agent' | 'arbiter' | null } | { ok: false; reason: string };

// The answers without a reason, made once: every record of a storm gets one.
const UNSIGNED: Authentication = Object.freeze({ ok: true, signedBy: null });
const BY_AGENT: Authentication = Object.freeze({ ok: true, signedBy: 'agent' });
const BY_ARBITER: Authentication = Object.freeze({ ok: true, signedBy: 'arbiter' });

/**
 * Who sent this record (a request, or a plan command): verified before any other rule. `value` is the record's bytes as written,
 * `signature` the header. A request claiming an agent with a registered key must carry that key's
 * signature (or Arbiter's, for plan steps); an unsigned one is let through only where allowed.
 */
export function authenticate(
  request: Pick<RemediationRequest, 'agentId' | 'requestedAt'>,
  value: Buffer | null,
  signature: string | undefined,
  rules: SignatureRules,
  now: number,
): Authentication {
  const key = rules.keyOf(request.agentId);
  if (!signature) {
    if (key) return { ok: false, reason: `agent ${request.agentId} has a registered key but the request is not signed` };
    if (rules.required && !rules.unsignedAllowed(request.agentId)) return { ok: false, reason: `unsigned request: the policy requires agent ${request.agentId} to sign` };
    return UNSIGNED;
  }
  if (!value) return { ok: false, reason: 'a signed record without a value' };
  const byAgent = key !== null && verifyValue(key, value, signature);
  const byArbiter = !byAgent && rules.arbiterKeys.some((k) => verifyValue(k, value, signature));
  if (!byAgent && !byArbiter) {
    return { ok: false, reason: key ? `the signature does not verify with agent ${request.agentId}'s key` : `no key registered for agent ${request.agentId}, and the signature is not Arbiter's` };
  }
  const age = now - request.requestedAt;
  if (Math.abs(age) > rules.maxAgeMs) {
    return { ok: false, reason: `signed request made ${Math.round(age / 1000)} s ago, outside the ${Math.round(rules.maxAgeMs / 1000)} s freshness window: a replay` };
  }
  return byAgent ? BY_AGENT : BY_ARBITER;
}
