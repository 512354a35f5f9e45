import type { Command } from 'commander';
import { ArbiterError } from '../../contract/errors.ts';
import { kafkaSecurityOptions } from '../../contract/kafka-client.ts';
import type { PlanEvent, PlanStepInput } from '../../contract/plan.ts';
import { configFrom, printJson, runCommand, withConfigOption } from '../shared.ts';

/**
 * `--step ACTION:ARN[:k=v,k=v]`. ARNs hold colons themselves, so parameters are recognised as a
 * last segment made of k=v pairs.
 */
export function parseStep(text: string): PlanStepInput {
  const colon = text.indexOf(':');
  if (colon <= 0) throw new ArbiterError('INVALID_REQUEST', `--step expects ACTION:ARN[:k=v,...], got '${text}'`);
  const action = text.slice(0, colon);
  let arn = text.slice(colon + 1);
  const params: Record<string, string> = {};
  const last = arn.lastIndexOf(':');
  const tail = last >= 0 ? arn.slice(last + 1) : '';
  if (/^[^=,/]+=[^,]*(,[^=,/]+=[^,]*)*$/.test(tail)) {
    for (const pair of tail.split(',')) {
      const eq = pair.indexOf('=');
      params[pair.slice(0, eq)] = pair.slice(eq + 1);
    }
    arn = arn.slice(0, last);
  }
  return { action, resourceArn: arn, params };
}

const collect = (value: string, previous: string[]) => [...previous, value];

export default function register(program: Command): void {
  const plan = program.command('plan').description('plans: ordered steps across resources (drain, then terminate)');

  withConfigOption(plan.command('submit'))
    .description('submit a plan as an agent; each step runs once the one before it has executed')
    .requiredOption('--agent <id>', 'agent identity')
    .option('--step <ACTION:ARN[:k=v,...]>', 'a step, in order (repeatable)', collect, [])
    .option('--deadline-seconds <n>', 'the plan fails if not done by then', (v) => Number(v))
    .option('--reason <text>', 'why (shown in the audit trail)')
    .option('--incident <id>', 'incident id')
    .option('--wait', 'wait for the plan to end, printing its events')
    .option('--timeout <seconds>', 'how long --wait waits', (v) => Number(v), 300)
    .option('--json', 'print JSON')
    .action(
      (options: { config?: string; agent: string; step: string[]; deadlineSeconds?: number; reason?: string; incident?: string; wait?: boolean; timeout: number; json?: boolean }) =>
        runCommand(async () => {
          if (!options.step.length) throw new ArbiterError('INVALID_REQUEST', 'a plan needs at least one --step');
          const steps = options.step.map(parseStep);
          const client = await clientFor(options);
          try {
            const handle = await client
              .plan(steps, {
                agentId: options.agent,
                ...(options.deadlineSeconds ? { deadline: Date.now() + options.deadlineSeconds * 1000 } : {}),
                ...(options.reason ? { reason: options.reason } : {}),
                ...(options.incident ? { incidentId: options.incident } : {}),
              })
              .submit();
            if (!options.wait) {
              if (options.json) printJson({ planId: handle.planId, status: 'SUBMITTED', requestIds: handle.requestIds });
              else console.log(`submitted plan ${handle.planId} (${steps.length} steps)`);
              return 0;
            }
            try {
              const result = await handle.wait({ timeoutMs: options.timeout * 1000, onEvent: (e) => !options.json && console.error(eventLine(e)) });
              if (options.json) printJson({ ...result, requestIds: handle.requestIds });
              else console.log(`plan ${result.planId} ${result.status}`);
              return result.status === 'SUCCEEDED' ? 0 : 3;
            } catch (error) {
              if (error instanceof ArbiterError && error.code === 'TIMEOUT') {
                if (options.json) printJson({ planId: handle.planId, status: 'TIMEOUT', detail: error.message });
                else console.error(error.message);
                return 2;
              }
              throw error;
            }
          } finally {
            await client.close();
          }
        }),
    );

  withConfigOption(plan.command('cancel'))
    .description('cancel a plan: steps not yet released end CANCELLED (only the agent that submitted it may)')
    .argument('<planId>')
    .requiredOption('--agent <id>', 'the agent that submitted the plan')
    .option('--reason <text>', 'why')
    .action((planId: string, options: { config?: string; agent: string; reason?: string }) =>
      runCommand(async () => {
        const client = await clientFor(options);
        try {
          await client.cancelPlan(planId, options.agent, options.reason);
          console.log(`cancellation of plan ${planId} sent`);
        } finally {
          await client.close();
        }
      }),
    );

  withConfigOption(plan.command('status'))
    .description("a plan's steps and the timeline of its events (from PostgreSQL)")
    .argument('<planId>')
    .option('--json', 'print JSON')
    .action((planId: string, options: { config?: string; json?: boolean }) =>
      runCommand(async () => {
        const found = await withPlans(options, async (store) => {
          const summary = await store.summary(planId);
          return summary && { ...summary, events: await store.events(planId) };
        });
        if (!found) throw new ArbiterError('INVALID_REQUEST', `no plan ${planId}`);
        if (options.json) return printJson(found);
        const { renderTable } = await import('../table.ts');
        console.log(`plan ${found.planId} by ${found.agentId}: ${found.status}${found.detail ? ` — ${found.detail}` : ''}`);
        console.log(renderTable(['step', 'action', 'resource', 'after', 'status', 'request', 'detail'], found.steps.map((s) => [s.step, s.action, s.resourceArn, s.after.join(',') || '-', s.status, s.requestId, s.detail ?? ''])));
        console.log(renderTable(['#', 'at', 'event', 'step', 'status', 'detail'], found.events.map((e) => [e.seq, new Date(e.at).toISOString(), e.type, e.step ?? '', e.stepStatus ?? e.planStatus, e.detail ?? ''])));
        return found.status === 'FAILED' || found.status === 'REJECTED' ? 3 : 0;
      }),
    );

  withConfigOption(plan.command('list'))
    .description('recent plans, newest first')
    .option('--status <status>', 'only RUNNING, SUCCEEDED, FAILED, CANCELLED or REJECTED')
    .option('--agent <id>', 'only this agent')
    .option('--limit <n>', 'at most this many', (v) => Number.parseInt(v, 10), 50)
    .option('--json', 'print JSON')
    .action((options: { config?: string; status?: string; agent?: string; limit: number; json?: boolean }) =>
      runCommand(async () => {
        const plans = await withPlans(options, (store) =>
          store.list({ limit: options.limit, ...(options.status ? { status: options.status.toUpperCase() } : {}), ...(options.agent ? { agentId: options.agent } : {}) }),
        );
        if (options.json) return printJson(plans);
        const { renderTable } = await import('../table.ts');
        console.log(renderTable(['plan', 'agent', 'status', 'executed', 'created', 'detail'], plans.map((p) => [p.planId, p.agentId, p.status, `${p.executed}/${p.steps}`, new Date(p.createdAt).toISOString(), p.detail ?? ''])));
      }),
    );
}

function eventLine(e: PlanEvent): string {
  const step = e.step !== null ? ` step ${e.step} (${e.action} ${e.resourceArn})` : '';
  return `#${e.seq} ${e.type}${step}${e.stepStatus ? ` ${e.stepStatus}` : ''}${e.detail ? ` — ${e.detail}` : ''}`;
}

async function clientFor(options: { config?: string }) {
  const config = await configFrom(options);
  const { ArbiterClient } = await import('../../agent-sdk/index.ts');
  return new ArbiterClient({ brokers: [...config.kafka.brokers], schemaRegistryUrl: config.schemaRegistryUrl, topicPrefix: config.kafka.topicPrefix, scopeRules: [...config.scopeRules], ...kafkaSecurityOptions(config) });
}

async function withPlans<T>(options: { config?: string }, fn: (store: import('../../plans/index.ts').PlanStore) => Promise<T>): Promise<T> {
  const config = await configFrom(options);
  const [{ createPool }, { PlanStore }] = await Promise.all([import('../../db/index.ts'), import('../../plans/index.ts')]);
  const pool = createPool(config.databaseUrl, { max: 2 });
  try {
    return await fn(new PlanStore(pool));
  } finally {
    await pool.end();
  }
}
