// Faults on demand, for tests and for trying things by hand: restart a service the stack started
// (keeping its data), or freeze it with SIGSTOP and thaw it with SIGCONT. Only ever acts on a
// process this stack instance started (its pid file and command-line marker), never on a service
// someone else runs, so a fault test cannot take down a shared broker by accident.
import { ArbiterError } from '../../src/index.ts';
import { livePid, signalGroup, stopDaemon } from './daemon.ts';
import { KAFKA_MARKER, startKafka } from './kafka.ts';
import { withStackLock } from './lock.ts';
import { REGISTRY_MARKER, recordedRegistryStorage, startRegistry } from './registry.ts';
import { createContext, type StackOptions } from './stack.ts';
import type { StackContext } from './context.ts';
import type { ServiceName } from './types.ts';

export type ControllableService = Extract<ServiceName, 'kafka' | 'registry'>;

const MARKERS: Record<ControllableService, string> = { kafka: KAFKA_MARKER, registry: REGISTRY_MARKER };

export interface RestartResult {
  /** From the stop signal until the process was gone. */
  stopMs: number;
  /** From the new process' spawn until it answered its health check. */
  startMs: number;
  pid: number;
}

/**
 * Stops the broker and starts it again on the same data directory: topics, records and committed
 * offsets survive. `keepData: false` is a fresh cluster, as `stack up` starts.
 */
export async function restartKafka(options: StackOptions & { keepData?: boolean } = {}): Promise<RestartResult> {
  return restart('kafka', options, (context) => startKafka(context, { keepData: options.keepData ?? true }));
}

/** Stops the registry and starts it again on the same storage (its SQL database). */
export async function restartRegistry(options: StackOptions = {}): Promise<RestartResult> {
  // Checked before anything is stopped: a registry we cannot bring back must stay up.
  const storage = recordedRegistryStorage(createContext(options));
  if (storage === undefined) {
    throw new ArbiterError('STACK_FAILED', 'the registry has no recorded storage database: start it with `stack up`');
  }
  return restart('registry', options, (context) => startRegistry(context, storage));
}

/** SIGSTOP: the process keeps its sockets open but answers nothing, like a hung or partitioned host. */
export function pauseService(service: ControllableService, options: StackOptions = {}): number {
  return signal(service, 'SIGSTOP', options);
}

export function resumeService(service: ControllableService, options: StackOptions = {}): number {
  return signal(service, 'SIGCONT', options);
}

export const pauseKafka = (options: StackOptions = {}): number => pauseService('kafka', options);
export const resumeKafka = (options: StackOptions = {}): number => resumeService('kafka', options);

async function restart(
  service: ControllableService,
  options: StackOptions,
  start: (context: StackContext) => Promise<number>,
): Promise<RestartResult> {
  const context = createContext(options);
  return withStackLock(context.paths.lockDir, context.log, async () => {
    ourPid(service, context);
    const stopAt = Date.now();
    await stopDaemon(context.paths.pidFile(service), MARKERS[service]);
    const startAt = Date.now();
    const pid = await start(context);
    context.log(`${service}: restarted as pid ${pid}`);
    return { stopMs: startAt - stopAt, startMs: Date.now() - startAt, pid };
  });
}

function signal(service: ControllableService, name: 'SIGSTOP' | 'SIGCONT', options: StackOptions): number {
  const context = createContext(options);
  const pid = ourPid(service, context);
  signalGroup(pid, name);
  context.log(`${service}: ${name === 'SIGSTOP' ? 'paused' : 'resumed'} pid ${pid}`);
  return pid;
}

function ourPid(service: ControllableService, { paths }: StackContext): number {
  const pid = livePid(paths.pidFile(service), MARKERS[service]);
  if (pid === undefined) {
    throw new ArbiterError(
      'STACK_FAILED',
      `${service} was not started by this stack instance (no live process in ${paths.pidFile(service)}); ` +
        'only a service the stack started can be restarted or paused',
    );
  }
  return pid;
}
