import { createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import { ArbiterError } from './errors.ts';

/**
 * Agent identity: each request record is signed by its agent with Ed25519 over the record's value
 * bytes exactly as written to Kafka (Confluent framing + Avro body — a canonical encoding of the
 * request for its schema), and the signature travels in this header (base64). Any client in any
 * language can sign the bytes it produces; re-routing and dead-letter replay keep value and header.
 */
export const SIGNATURE_HEADER = 'arbiter-signature';

export function signValue(privateKey: KeyObject, value: Buffer): string {
  return sign(null, value, privateKey).toString('base64');
}

export function verifyValue(publicKey: KeyObject, value: Buffer, signature: string): boolean {
  try {
    return verify(null, value, publicKey, Buffer.from(signature, 'base64'));
  } catch {
    return false;
  }
}

/** A public key as the config holds it: base64 of the DER SubjectPublicKeyInfo (one line), or PEM. */
export function parsePublicKey(text: string): KeyObject {
  const key = text.includes('BEGIN') ? createPublicKey(text) : createPublicKey({ key: Buffer.from(text.trim(), 'base64'), format: 'der', type: 'spki' });
  if (key.asymmetricKeyType !== 'ed25519') throw new ArbiterError('CONFIG_INVALID', `not an Ed25519 public key (${key.asymmetricKeyType})`);
  return key;
}

/** A private key: PEM (PKCS#8), or base64 of its DER. */
export function parsePrivateKey(text: string): KeyObject {
  const key = text.includes('BEGIN') ? createPrivateKey(text) : createPrivateKey({ key: Buffer.from(text.trim(), 'base64'), format: 'der', type: 'pkcs8' });
  if (key.asymmetricKeyType !== 'ed25519') throw new ArbiterError('CONFIG_INVALID', `not an Ed25519 private key (${key.asymmetricKeyType})`);
  return key;
}

/** A new key pair: the private key for the agent (PEM), the public key for the policy (one base64 line). */
export function generateSigningKeys(): { privateKeyPem: string; publicKey: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return {
    privateKeyPem: privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
    publicKey: publicKey.export({ format: 'der', type: 'spki' }).toString('base64'),
  };
}
