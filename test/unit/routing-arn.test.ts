import { describe, expect, it } from 'vitest';
import { ArbiterError } from '../../src/contract/errors.ts';
import { InvalidArnError, MAX_ARN_LENGTH, parseArn, tryParseArn } from '../../src/routing/index.ts';

const POD = 'arn:aws:k8s:us-east-1:123456789012:cluster/prod/ns/payments/deployment/api/pod/api-7d9f';

function reasonOf(text: string): string {
  const result = tryParseArn(text);
  if (result.ok) throw new Error(`expected ${text} to be rejected`);
  return result.reason;
}

describe('parseArn', () => {
  it('takes a pod ARN apart, the resource being the last type/name pair', () => {
    const arn = parseArn(POD);
    expect(arn).toEqual({
      partition: 'aws',
      service: 'k8s',
      region: 'us-east-1',
      account: '123456789012',
      path: 'cluster/prod/ns/payments/deployment/api/pod/api-7d9f',
      segments: ['cluster', 'prod', 'ns', 'payments', 'deployment', 'api', 'pod', 'api-7d9f'],
      resourceType: 'pod',
      resourceName: 'api-7d9f',
      text: POD,
    });
    expect(Object.isFrozen(arn)).toBe(true);
  });

  it('accepts an empty region and an empty account, like AWS global services', () => {
    const arn = parseArn('arn:aws:iam:::role/remediator');
    expect(arn.region).toBe('');
    expect(arn.account).toBe('');
    expect([arn.resourceType, arn.resourceName]).toEqual(['role', 'remediator']);
  });

  it('accepts the punctuation real resource names use', () => {
    expect(parseArn('arn:aws:k8s:eu-west-1:000000000000:node/ip-10-0-1-2.ec2.internal').resourceName).toBe(
      'ip-10-0-1-2.ec2.internal',
    );
    expect(parseArn('arn:sim:fleet::000000000000:service/checkout_v2/replica/r~1@a+b=c,d').resourceType).toBe(
      'replica',
    );
  });

  it('tryParseArn returns the same ARN as parseArn', () => {
    expect(tryParseArn(POD)).toEqual({ ok: true, arn: parseArn(POD) });
  });

  it('throws a permanent InvalidArnError with code INVALID_ARN and the reason', () => {
    let caught: unknown;
    try {
      parseArn('arn:aws:k8s:us-east-1:123456789012');
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(InvalidArnError);
    expect(caught).toBeInstanceOf(ArbiterError);
    const error = caught as InvalidArnError;
    expect(error.code).toBe('INVALID_ARN');
    expect(error.retryable).toBe(false);
    expect(error.reason).toBe(
      "ARN has 5 of the 6 ':'-separated fields (arn:<partition>:<service>:<region>:<account>:<path>)",
    );
    expect(error.message).toContain('"arn:aws:k8s:us-east-1:123456789012"');
    expect(error.message).toContain(error.reason);
  });

  it.each<[string, string, string]>([
    ['empty', '', 'ARN is empty'],
    ['wrong prefix', 'aws:k8s:us-east-1:123456789012:pod/a', "ARN must start with 'arn:' (it starts with 'aws:')"],
    ['uppercase prefix', 'ARN:aws:k8s:::pod/a', "ARN must start with 'arn:' (it starts with 'ARN:')"],
    ['surrounding whitespace', ` ${POD}`, 'ARN has leading or trailing whitespace'],
    [
      'too few fields',
      'arn:aws:k8s:us-east-1:123456789012',
      "ARN has 5 of the 6 ':'-separated fields (arn:<partition>:<service>:<region>:<account>:<path>)",
    ],
    [
      'a colon in the path',
      'arn:aws:k8s:us-east-1:123456789012:pod/a:b',
      "ARN has 7 ':'-separated fields, expected 6 (arn:<partition>:<service>:<region>:<account>:<path>); ':' is not allowed in the path",
    ],
    ['empty partition', 'arn::k8s:us-east-1:123456789012:pod/a', 'partition is empty'],
    ['empty service', 'arn:aws::us-east-1:123456789012:pod/a', 'service is empty'],
    [
      'uppercase partition',
      'arn:AWS:k8s:us-east-1:123456789012:pod/a',
      "invalid character 'A' (U+0041) at offset 4 (partition 'AWS'); partition allows lowercase letters, digits and -",
    ],
    [
      'underscore in region',
      'arn:aws:k8s:us_east_1:123456789012:pod/a',
      "invalid character '_' (U+005F) at offset 14 (region 'us_east_1'); region allows lowercase letters, digits and -",
    ],
    ['short account', 'arn:aws:k8s:us-east-1:12345:pod/a', "account must be 12 digits or empty (got '12345')"],
    ['letters in account', 'arn:aws:k8s:us-east-1:12345678901x:pod/a', "account must be 12 digits or empty (got '12345678901x')"],
    ['empty path', 'arn:aws:k8s:us-east-1:123456789012:', 'path is empty'],
    ['leading slash', 'arn:aws:k8s:us-east-1:123456789012:/pod/a', "path must not start with '/'"],
    ['trailing slash', 'arn:aws:k8s:us-east-1:123456789012:pod/a/', "path must not end with '/'"],
    ['empty segment', 'arn:aws:k8s:us-east-1:123456789012:cluster/prod//payments', 'path segment 3 is empty'],
    [
      'relative segment',
      'arn:aws:k8s:us-east-1:123456789012:cluster/prod/ns/..',
      "path segment 4 is '..'; relative segments are not allowed",
    ],
    [
      'space in a segment',
      'arn:aws:k8s:us-east-1:123456789012:cluster/prod/pod/my pod',
      "invalid character U+0020 at offset 54 (path segment 4, 'my pod'); path segments allow letters, digits and . _ ~ @ + = , -",
    ],
    [
      'glob character',
      'arn:aws:k8s:us-east-1:123456789012:cluster/*',
      "invalid character '*' (U+002A) at offset 43 (path segment 2, '*'); path segments allow letters, digits and . _ ~ @ + = , -",
    ],
    [
      'non-ASCII letter',
      'arn:aws:k8s:us-east-1:123456789012:pod/café',
      "invalid character 'é' (U+00E9) at offset 42 (path segment 2, 'café'); path segments allow letters, digits and . _ ~ @ + = , -",
    ],
    [
      'control character, escaped in the reason',
      'arn:aws:k8s:us-east-1:123456789012:pod/a\u0000b',
      "invalid character U+0000 at offset 40 (path segment 2, 'a\\u{0}b'); path segments allow letters, digits and . _ ~ @ + = , -",
    ],
    [
      'odd number of segments',
      'arn:aws:k8s:us-east-1:123456789012:cluster/prod/ns/payments/deployment',
      "path has 5 segments; it must be <type>/<name> pairs, and the last type 'deployment' has no name",
    ],
    [
      'a single segment',
      'arn:aws:s3:::bucket',
      "path has 1 segments; it must be <type>/<name> pairs, and the last type 'bucket' has no name",
    ],
  ])('rejects %s', (_case, text, reason) => {
    expect(reasonOf(text)).toBe(reason);
    expect(() => parseArn(text)).toThrow(InvalidArnError);
  });

  it('reports an emoji as one character at its offset', () => {
    expect(reasonOf('arn:aws:k8s:::pod/\u{1F525}x')).toBe(
      "invalid character '\u{1F525}' (U+1F525) at offset 18 (path segment 2, '\u{1F525}x'); path segments allow letters, digits and . _ ~ @ + = , -",
    );
  });

  it('enforces the length limit before anything else', () => {
    const head = 'arn:aws:k8s:us-east-1:123456789012:pod/';
    const atLimit = head + 'a'.repeat(MAX_ARN_LENGTH - head.length);
    expect(parseArn(atLimit).text).toHaveLength(MAX_ARN_LENGTH);
    expect(reasonOf(`${atLimit}b`)).toBe('ARN longer than 2048 characters (2049)');
  });

  it('rejects a value that is not a string without throwing a TypeError', () => {
    expect(tryParseArn(undefined as unknown as string)).toEqual({ ok: false, reason: 'ARN must be a string, got undefined' });
    expect(() => parseArn(null as unknown as string)).toThrow(InvalidArnError);
  });

  it('cuts very long ARNs in the error message', () => {
    const text = `x${'a'.repeat(5000)}`;
    const error = (() => {
      try {
        parseArn(text);
      } catch (e) {
        return e as InvalidArnError;
      }
      throw new Error('not rejected');
    })();
    expect(error.message.length).toBeLessThan(400);
    expect(error.arn.length).toBeLessThanOrEqual(201);
  });
});
