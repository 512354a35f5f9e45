import { BoundedCache } from '../contract/bounded-cache.ts';
import { ArbiterError } from '../contract/errors.ts';

/**
 * A resource ARN, `arn:<partition>:<service>:<region>:<account>:<path>`, checked and taken
 * apart. The ARN text is also the raw material of scopes and Kafka keys, so anything that
 * could make two spellings name one resource (case in the identifiers, `.`/`..`, empty
 * segments, stray whitespace) is rejected rather than normalised: a guessed ARN would
 * route a request away from the owner of the resource.
 */
export interface ParsedArn {
  readonly partition: string;
  readonly service: string;
  /** Empty for global services, as in AWS. */
  readonly region: string;
  /** Twelve digits, or empty. */
  readonly account: string;
  readonly path: string;
  /** `path` split on `/`: alternating resource type and name. */
  readonly segments: readonly string[];
  /** Type of the last `type/name` pair, e.g. `pod`. */
  readonly resourceType: string;
  /** Name of the last `type/name` pair, e.g. `api-7d9f`. */
  readonly resourceName: string;
  /** The ARN exactly as given (it is valid, so nothing was changed). */
  readonly text: string;
}

export type ArnParseResult = { ok: true; arn: ParsedArn } | { ok: false; reason: string };

/** Same limit as AWS; it also bounds the work a hostile request can cause. */
export const MAX_ARN_LENGTH = 2048;

export class InvalidArnError extends ArbiterError {
  /** The precise reason, without the ARN; suitable for an outcome's `detail`. */
  readonly reason: string;
  /** The rejected input, cut to a loggable length. */
  readonly arn: string;

  constructor(text: unknown, reason: string) {
    const preview = typeof text === 'string' ? cut(text) : String(text);
    super('INVALID_ARN', `invalid ARN ${JSON.stringify(preview)}: ${reason}`);
    this.name = 'InvalidArnError';
    this.reason = reason;
    this.arn = preview;
  }
}

export function parseArn(text: string): ParsedArn {
  const result = tryParseArn(text);
  if (!result.ok) throw new InvalidArnError(text, result.reason);
  return result.arn;
}

const FORMAT = 'arn:<partition>:<service>:<region>:<account>:<path>';
const FIELD_COUNT = 6;

// Identifiers are lowercase so `AWS` and `aws` cannot become two scopes for one resource.
const IDENTIFIER_CHARS = /^[a-z0-9-]$/;
const IDENTIFIER_RULE = 'lowercase letters, digits and -';
// No ':' (field separator), '/' (segment separator) or glob/regex metacharacters such as
// '*' and '?', which policies and scope rules give a meaning to.
const SEGMENT_CHARS = /^[A-Za-z0-9._~@+=,-]$/;
const SEGMENT_RULE = 'letters, digits and . _ ~ @ + = , -';

/**
 * Parsed ARNs by text. A storm repeats each resource's ARN about a hundred times, and parsing one
 * was ~3 % of a worker's CPU; results are frozen values, so sharing them is safe. Bounded: cleared
 * when full.
 */
const parsed = new BoundedCache<string, ArnParseResult>(20_000);

export function tryParseArn(text: string): ArnParseResult {
  if (typeof text !== 'string' || text.length > MAX_ARN_LENGTH) return parseArnText(text);
  return parsed.get(text) ?? parsed.set(text, deepFreeze(parseArnText(text)));
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

function parseArnText(text: string): ArnParseResult {
  const reason = (r: string): ArnParseResult => ({ ok: false, reason: r });

  if (typeof text !== 'string') return reason(`ARN must be a string, got ${text === null ? 'null' : typeof text}`);
  if (text.length === 0) return reason('ARN is empty');
  if (text.length > MAX_ARN_LENGTH) {
    return reason(`ARN longer than ${MAX_ARN_LENGTH} characters (${text.length})`);
  }
  if (text.trim() !== text) return reason('ARN has leading or trailing whitespace');
  if (!text.startsWith('arn:')) return reason(`ARN must start with 'arn:' (it starts with ${quote(text.slice(0, 4))})`);

  const fields = text.split(':');
  if (fields.length < FIELD_COUNT) {
    return reason(`ARN has ${fields.length} of the ${FIELD_COUNT} ':'-separated fields (${FORMAT})`);
  }
  if (fields.length > FIELD_COUNT) {
    return reason(
      `ARN has ${fields.length} ':'-separated fields, expected ${FIELD_COUNT} (${FORMAT}); ` +
        "':' is not allowed in the path",
    );
  }
  const [, partition, service, region, account, path] = fields as [string, string, string, string, string, string];
  const offsets = fieldOffsets(fields);

  const identifierProblem =
    checkIdentifier('partition', partition, offsets[1]!, false) ??
    checkIdentifier('service', service, offsets[2]!, false) ??
    checkIdentifier('region', region, offsets[3]!, true);
  if (identifierProblem) return reason(identifierProblem);

  if (account !== '' && !/^[0-9]{12}$/.test(account)) {
    return reason(`account must be 12 digits or empty (got ${quote(account)})`);
  }

  if (path === '') return reason('path is empty');
  if (path.startsWith('/')) return reason("path must not start with '/'");
  if (path.endsWith('/')) return reason("path must not end with '/'");

  const segments = path.split('/');
  let segmentOffset = offsets[5]!;
  for (const [index, segment] of segments.entries()) {
    const number = index + 1;
    if (segment === '') return reason(`path segment ${number} is empty`);
    if (segment === '.' || segment === '..') {
      return reason(`path segment ${number} is ${quote(segment)}; relative segments are not allowed`);
    }
    const bad = firstInvalidChar(segment, SEGMENT_CHARS);
    if (bad) {
      return reason(
        `invalid character ${describeChar(bad.char)} at offset ${segmentOffset + bad.index} ` +
          `(path segment ${number}, ${quote(segment)}); path segments allow ${SEGMENT_RULE}`,
      );
    }
    segmentOffset += segment.length + 1;
  }

  if (segments.length % 2 !== 0) {
    return reason(
      `path has ${segments.length} segments; it must be <type>/<name> pairs, ` +
        `and the last type ${quote(segments[segments.length - 1]!)} has no name`,
    );
  }

  const arn: ParsedArn = Object.freeze({
    partition,
    service,
    region,
    account,
    path,
    segments: Object.freeze(segments),
    resourceType: segments[segments.length - 2]!,
    resourceName: segments[segments.length - 1]!,
    text,
  });
  return { ok: true, arn };
}

function checkIdentifier(field: string, value: string, offset: number, mayBeEmpty: boolean): string | undefined {
  if (value === '') return mayBeEmpty ? undefined : `${field} is empty`;
  const bad = firstInvalidChar(value, IDENTIFIER_CHARS);
  if (!bad) return undefined;
  return (
    `invalid character ${describeChar(bad.char)} at offset ${offset + bad.index} ` +
    `(${field} ${quote(value)}); ${field} allows ${IDENTIFIER_RULE}`
  );
}

function fieldOffsets(fields: readonly string[]): number[] {
  const offsets: number[] = [];
  let offset = 0;
  for (const field of fields) {
    offsets.push(offset);
    offset += field.length + 1;
  }
  return offsets;
}

/** Walks by code point so an emoji is reported as one character, at its UTF-16 offset. */
function firstInvalidChar(value: string, allowed: RegExp): { char: string; index: number } | undefined {
  let index = 0;
  for (const char of value) {
    if (!allowed.test(char)) return { char, index };
    index += char.length;
  }
  return undefined;
}

function describeChar(char: string): string {
  const codePoint = char.codePointAt(0)!;
  const hex = `U+${codePoint.toString(16).toUpperCase().padStart(4, '0')}`;
  // Control and invisible characters are named only by code point so the reason stays printable.
  const printable = codePoint > 0x20 && codePoint !== 0x7f && !/\p{C}|\p{Z}/u.test(char);
  return printable ? `${quote(char)} (${hex})` : hex;
}

function quote(value: string): string {
  return `'${cut(value).replace(/[\p{C}\p{Zl}\p{Zp}]/gu, (c) => `\\u{${c.codePointAt(0)!.toString(16)}}`)}'`;
}

function cut(value: string, max = 200): string {
  return value.length <= max ? value : `${value.slice(0, max)}…`;
}
