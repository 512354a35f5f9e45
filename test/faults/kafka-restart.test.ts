import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { restartKafka } from '../../tools/stack/index.ts';
import { eventually } from '../support/harness.ts';
import { startStorm, type Storm } from './storm.ts';

/**
 * The broker stopped (SIGTERM, a clean shutdown) and started again on its data while two workers
 * work off a storm; the second half of the storm is sent once it is back.
 */

const TOTAL = 2_000;

describe('Kafka restarted with its data during a storm of 2,000 over 2 workers', () => {
  let storm: Storm;

  beforeAll(async () => {
    storm = await startStorm(TOTAL);
  });
  afterAll(async () => {
    await storm?.stop();
  });

  it('both workers survive; every request a final outcome; nothing executed twice', async () => {
    await storm.send(0, TOTAL / 2);
    await eventually(async () => (await storm.countFinal()) >= 200, 60_000, 'the storm under way');
    const startedAt = Date.now();
    const restart = await restartKafka({ keepData: true });
    const endedAt = Date.now();
    console.log(`kafka restart: stopped in ${restart.stopMs} ms, healthy ${restart.startMs} ms after the new start`);
    await storm.send(TOTAL / 2, TOTAL);
    const report = await storm.finish('kafka restarted', { startedAt, endedAt });
    expect(report.firstDecisionAfterMs).toBeLessThan(60_000);
  });
});
