import { describe, expect, it } from 'vitest';
import { migrationLogger } from '../../src/db/index.ts';

describe('migrationLogger', () => {
  it("drops node-pg-migrate's complaint about numbered file names, as a warning (7.x) or an error (8.x)", () => {
    const lines: string[] = [];
    const logger = migrationLogger((line) => lines.push(line));
    logger.warn("Can't determine timestamp for 0001");
    logger.error("Can't determine timestamp for 0015");
    expect(lines).toEqual([]);
  });

  it('passes every other warning and error on, and keeps debug and info quiet', () => {
    const lines: string[] = [];
    const logger = migrationLogger((line) => lines.push(line));
    logger.warn('Not run migration 0016_x is preceding already run migration 0017_y');
    logger.error('relation "arbiter.requests" already exists');
    logger.info('### MIGRATION 0001_audit-store (UP) ###');
    logger.debug('sql');
    expect(lines).toEqual(['Not run migration 0016_x is preceding already run migration 0017_y', 'relation "arbiter.requests" already exists']);
  });
});
