import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { isSameRequest, redactParams, redactSecretParams, secretParamsOf, allSecretParamNames } from '../../src/audit/index.ts';
import { loadConfig } from '../../src/config/index.ts';
import { buildRequest } from '../../src/contract/request.ts';
import { createLogger, secretParamScrubber } from '../../src/logging/index.ts';

const TOKEN = 'tok-9f8e7d6c5b4a';
const ENV = { KAFKA_BROKERS: '127.0.0.1:9092', DATABASE_URL: 'postgres://postgres@127.0.0.1:5432/arbiter', SCHEMA_REGISTRY_URL: 'http://127.0.0.1:8081' };

describe('params marked secret by the policy', () => {
  const config = loadConfig({ env: ENV, overrides: { actions: { deploy: { secretParams: ['token', 'db-password'] } } } });
  const secret = secretParamsOf(config.actions);
  const request = buildRequest({ agentId: 'a', resourceArn: 'arn:aws:ecs:eu-west-1:1:service/c/s', action: 'deploy', params: { image: 'web:2', token: TOKEN } });

  it('are configured per action (actions.<name>.secretParams), none by default', () => {
    expect(config.actions.deploy.secretParams).toEqual(['token', 'db-password']);
    expect(config.actions.restart.secretParams).toEqual([]);
    expect(allSecretParamNames(secret)).toEqual(['db-password', 'token']);
    expect(() => loadConfig({ env: ENV, overrides: { actions: { deploy: { secretParams: ['a"b'] } } } })).toThrow(/secretParams/);
  });

  it('are stored redacted; other params, other actions and the request given are untouched', () => {
    const stored = redactSecretParams(request, secret);
    expect(stored.params).toEqual({ image: 'web:2', token: '[redacted]' });
    expect(request.params.token).toBe(TOKEN);
    const restart = { ...request, action: 'restart' };
    expect(redactSecretParams(restart, secret)).toBe(restart);
    expect(redactParams({ image: 'x' }, ['token'])).toEqual({ image: 'x' });
  });

  it('a redelivery is still recognised against a row stored with them redacted', () => {
    const stored = redactSecretParams(request, secret);
    expect(isSameRequest(stored, request)).toBe(false);
    expect(isSameRequest(stored, request, secret.deploy)).toBe(true);
    expect(isSameRequest(stored, { ...request, params: { ...request.params, image: 'web:3' } }, secret.deploy)).toBe(false);
  });

  it('are censored in log lines, as fields and as settings in messages', () => {
    const lines: string[] = [];
    const destination = new Writable({
      write(chunk, _encoding, done) {
        lines.push(String(chunk));
        done();
      },
    });
    const log = createLogger({ level: 'debug', destination, secretParams: allSecretParamNames(secret) });
    log.info({ request }, 'arrived');
    log.info({ params: request.params, step: { params: { 'db-password': TOKEN } } }, 'params');
    log.warn(`executor said: bad call {"action":"deploy","params":{"token":"${TOKEN}"}}`);
    log.error({ err: new Error(`rejected token=${TOKEN}&image=web:2`) }, 'failed');
    expect(lines).toHaveLength(4);
    for (const line of lines) {
      expect(line).not.toContain(TOKEN);
      expect(() => JSON.parse(line)).not.toThrow();
    }
    expect(JSON.parse(lines[0]!).request.params).toEqual({ image: 'web:2', token: '[redacted]' });
    expect(lines[3]).toContain('image=web:2');
  });

  it('the scrubber matches whole names only and keeps JSON valid', () => {
    const scrub = secretParamScrubber(['token']);
    expect(scrub(`csrf_token=${TOKEN} x-token: ${TOKEN}`)).toBe(`csrf_token=${TOKEN} x-token: ${TOKEN}`);
    expect(scrub(`token: ${TOKEN}, next`)).toBe('token: [redacted], next');
    expect(JSON.parse(scrub(JSON.stringify({ msg: JSON.stringify({ token: TOKEN, a: 1 }), token: 'a"b' })))).toEqual({
      msg: '{"token":"[redacted]","a":1}',
      token: '[redacted]',
    });
  });
});
