import { describe, expect, it } from 'vitest';
import { createContext } from '../../tools/stack/index.ts';
import { dockerEngineAvailable } from '../../tools/stack/containers.ts';
import { chooseRuntime, localPathProblem } from '../../tools/stack/runtime.ts';

const quiet = { log: () => undefined };

describe('stack runtime', () => {
  it('auto is local where Java and the jars path work', async () => {
    const context = createContext({ ...quiet, env: { ...process.env, ARBITER_STACK_MODE: 'auto' } });
    expect(await localPathProblem(context)).toBeUndefined();
    expect(await chooseRuntime(context)).toBe('local');
  });

  it('says why the local path cannot work instead of reaching for Docker silently', async () => {
    const context = createContext({ ...quiet, env: { ...process.env, ARBITER_KAFKA_JAVA: '/nonexistent/java' }, runtime: 'auto' });
    expect(await localPathProblem(context)).toMatch(/ARBITER_KAFKA_JAVA=\/nonexistent\/java/);
    if (await dockerEngineAvailable()) {
      await expect(chooseRuntime(context)).resolves.toBe('containers');
    } else {
      await expect(chooseRuntime(context)).rejects.toThrow(/cannot start services locally: .*ARBITER_KAFKA_JAVA.*no Docker engine/s);
    }
  });

  it('--runtime docker is taken as asked (or fails naming the missing engine); a private instance is local only', async () => {
    // The engine is looked for first: a rejection left unawaited meanwhile would be an unhandled one.
    const engine = await dockerEngineAvailable();
    const docker = chooseRuntime(createContext({ ...quiet, runtime: 'docker' }));
    if (engine) await expect(docker).resolves.toBe('containers');
    else await expect(docker).rejects.toThrow(/--runtime docker .*docker info/);
    const privateOne = createContext({ ...quiet, env: { ...process.env, ARBITER_STACK_RUN_DIR: '/tmp/x' }, runtime: 'docker' });
    await expect(chooseRuntime(privateOne)).rejects.toThrow(/private instance/);
    expect(await chooseRuntime(createContext({ ...quiet, runtime: 'local' }))).toBe('local');
  });
});
