import { describe, expect, it } from 'vitest';
import { arbiterAcls, renderSecureServerProperties, scramFormatArguments } from '../../tools/stack/secure-kafka-config.ts';
import { readStackSettings } from '../../tools/stack/settings.ts';

const can = (acls: ReturnType<typeof arbiterAcls>, user: string, operation: string, name: string) =>
  acls.some((acl) => acl.principal === `User:${user}` && acl.operation === operation && acl.name === name);

describe('secure broker configuration', () => {
  const acls = arbiterAcls('shop', 'shop-workers');

  it('lets agents write requests and read outcomes, never the reverse', () => {
    expect(can(acls, 'agent', 'write', 'shop.requests')).toBe(true);
    expect(can(acls, 'agent', 'read', 'shop.outcomes')).toBe(true);
    expect(can(acls, 'agent', 'write', 'shop.outcomes')).toBe(false);
    expect(can(acls, 'agent', 'read', 'shop.requests')).toBe(false);
    expect(can(acls, 'agent', 'write', 'shop.dead-letter')).toBe(false);
  });

  it('lets only workers read requests and write outcomes and dead letters; analysts get nothing', () => {
    expect(can(acls, 'worker', 'read', 'shop.requests')).toBe(true);
    expect(can(acls, 'worker', 'write', 'shop.outcomes')).toBe(true);
    expect(can(acls, 'worker', 'write', 'shop.dead-letter')).toBe(true);
    expect(acls.filter((acl) => acl.principal === 'User:worker' && acl.resource === 'group').map((acl) => acl.name).sort()).toEqual([
      'shop-workers',
      'shop-workers.observations',
      'shop-workers.plans',
    ]);
    expect(acls.some((acl) => acl.principal === 'User:analyst')).toBe(false);
  });

  it('closes everything without an ACL and makes SCRAM users at format time', () => {
    const properties = renderSecureServerProperties(
      { dataDir: '/d', keystoreFile: '/k.p12', keystorePassword: 'kp', caFile: '/ca.pem' },
      { secureKafka: 9094, secureKafkaController: 9095 },
      { broker: 'b0' },
    );
    expect(properties).toContain('listeners=SASL_SSL://127.0.0.1:9094,CONTROLLER://127.0.0.1:9095\n');
    expect(properties).toContain('allow.everyone.if.no.acl.found=false\n');
    expect(properties).toContain('super.users=User:broker;User:admin\n');
    expect(properties).not.toContain('PLAINTEXT');
    const args = scramFormatArguments({ broker: 'b0', admin: 'a1', worker: 'w2', agent: 'g3', analyst: 'n4' });
    expect(args).toContain('SCRAM-SHA-512=[name=agent,password=g3]');
    expect(args.filter((arg) => arg === '--add-scram')).toHaveLength(5);
  });

  it('puts the secure broker beside the plain one unless told otherwise', () => {
    expect(readStackSettings({}).ports).toMatchObject({ kafka: 9092, secureKafka: 9094, secureKafkaController: 9095 });
    expect(readStackSettings({ ARBITER_SECURE_KAFKA_PORT: '19500' }).ports).toMatchObject({ secureKafka: 19500, secureKafkaController: 19501 });
  });
});
