import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pauseKafka, resumeKafka } from '../../tools/stack/index.ts';
import { eventually } from '../support/harness.ts';
import { startStorm, type Storm } from './storm.ts';

/**
 * The broker frozen for 30 s (SIGSTOP: its sockets stay open and nothing answers, like a hung host
 * or a partition) while two workers work off a storm, then continued.
 */

const TOTAL = 2_000;
const PAUSE_MS = 30_000;

describe('Kafka paused 30 s during a storm of 2,000 over 2 workers', () => {
  let storm: Storm;
  let paused = false;

  beforeAll(async () => {
    storm = await startStorm(TOTAL);
  });
  afterAll(async () => {
    if (paused) resumeKafka();
    await storm?.stop();
  });

  it('both workers survive; every request a final outcome; nothing executed twice', async () => {
    await storm.send(0, TOTAL);
    await eventually(async () => (await storm.countFinal()) >= 200, 60_000, 'the storm under way');
    const startedAt = Date.now();
    pauseKafka();
    paused = true;
    await sleep(PAUSE_MS);
    resumeKafka();
    paused = false;
    const report = await storm.finish('kafka paused 30 s', { startedAt, endedAt: Date.now() });
    expect(report.firstDecisionAfterMs).toBeLessThan(60_000);
  });
});
