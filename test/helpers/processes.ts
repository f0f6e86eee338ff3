import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, type AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { request } from 'undici';
import { Redis } from 'ioredis';
import { unlinkPrefix } from './redis-keys.ts';

/**
 * Real child processes for fault tests: the apps as production runs them
 * (`node apps/<app>/src/main.ts`, see the Dockerfile), and helper
 * servers such as a `redis-server` of a test's own.
 *
 * Every process is spawned in a process group of its own and kept in a registry, so
 * `stopAllProcesses()` (call it from afterEach/afterAll) and the test process's own exit
 * leave nothing running, even when a test fails half-way.
 */

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

export type AppName = 'api' | 'worker' | 'emulator';

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface SpawnOptions {
  /** Shown in echoed output and error messages, e.g. `worker-1`. */
  name: string;
  command: string;
  args?: string[];
  /** The whole environment of the child on top of PATH/HOME/NODE_OPTIONS; nothing else is inherited. */
  env?: Record<string, string>;
}

export interface RunningProcess {
  name: string;
  pid: number;
  child: ChildProcess;
  /** Everything written to stdout and stderr so far, interleaved as it arrived. */
  output(): string;
  lines(): string[];
  /** The output lines that are JSON objects (pino logs). */
  logs(): Record<string, unknown>[];
  /** Resolves with the first line that matches (already written or still to come). */
  waitForLine(match: string | RegExp | ((line: string) => boolean), timeoutMs?: number): Promise<string>;
  /** Resolves with the first JSON log entry whose `msg` is `msg`. */
  waitForLog(msg: string, timeoutMs?: number): Promise<Record<string, unknown>>;
  /** Sends `signal` to the process itself. */
  kill(signal: NodeJS.Signals): void;
  /** Sends `signal` to every process of its group (the process and any children it started). */
  killGroup(signal: NodeJS.Signals): void;
  /** Resolves once the child has exited and its output is fully read. */
  exited: Promise<Exit>;
  /** `exited`, or a rejection carrying the output tail after `timeoutMs`. */
  waitForExit(timeoutMs?: number): Promise<Exit>;
  /** Whether the child has exited. */
  readonly done: boolean;
}

const registry = new Set<RunningProcess>();
let exitHookInstalled = false;

/** The environment a child gets: a small base, plus exactly what the test passes. */
function childEnv(extra: Record<string, string> = {}): Record<string, string> {
  const base: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin',
    HOME: process.env.HOME ?? '/tmp',
  };
  if (process.env.NODE_OPTIONS) base.NODE_OPTIONS = process.env.NODE_OPTIONS;
  return { ...base, ...extra };
}

/** Spawns a process in its own process group, capturing its output. */
export function spawnProcess({ name, command, args = [], env = {} }: SpawnOptions): RunningProcess {
  installExitHook();
  const child = spawn(command, args, {
    cwd: REPO_ROOT,
    env: childEnv(env),
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  if (child.pid === undefined) throw new Error(`could not spawn ${name} (${command})`);
  const pid = child.pid;

  const chunks: string[] = [];
  const complete: string[] = [];
  // Per stream, so a line half-read from stdout is never glued to one from stderr.
  const partial = { stdout: '', stderr: '' };
  const listeners = new Set<() => void>();
  const echo = Boolean(process.env.TEST_LOG_LEVEL);
  const addLine = (line: string) => {
    complete.push(line);
    if (echo) process.stderr.write(`[${name}] ${line}\n`);
  };
  const reader = (stream: keyof typeof partial) => (text: string) => {
    chunks.push(text);
    const pieces = (partial[stream] + text).split('\n');
    partial[stream] = pieces.pop() ?? '';
    for (const line of pieces) addLine(line);
    for (const listener of listeners) listener();
  };
  child.stdout?.setEncoding('utf8').on('data', reader('stdout'));
  child.stderr?.setEncoding('utf8').on('data', reader('stderr'));

  let done = false;
  const exited = new Promise<Exit>((resolve) => {
    let exit: Exit | undefined;
    const finish = () => {
      if (!exit || done) return;
      done = true;
      for (const stream of ['stdout', 'stderr'] as const) {
        if (partial[stream]) addLine(partial[stream]);
        partial[stream] = '';
      }
      registry.delete(running);
      for (const listener of listeners) listener();
      resolve(exit);
    };
    child.once('exit', (code, signal) => {
      exit = { code, signal };
      // A surviving grandchild could hold the pipes open: do not wait for them forever.
      setTimeout(finish, 2_000).unref();
    });
    child.once('close', finish);
    child.once('error', (error) => {
      chunks.push(`spawn error: ${error.message}\n`);
      exit = { code: null, signal: null };
      finish();
    });
  });

  const lines = () => [...complete, ...[partial.stdout, partial.stderr].filter(Boolean)];
  const tail = () => lines().slice(-40).join('\n');

  function waitFor<T>(find: () => T | undefined, describe: string, timeoutMs: number): Promise<T> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const found = find();
        if (found !== undefined) return settle(() => resolve(found));
        if (done) settle(() => reject(new Error(`${name} exited before ${describe}; its output:\n${tail()}`)));
      };
      const timer = setTimeout(
        () => settle(() => reject(new Error(`${name}: no ${describe} within ${timeoutMs} ms; its output:\n${tail()}`))),
        timeoutMs,
      );
      const settle = (action: () => void) => {
        clearTimeout(timer);
        listeners.delete(check);
        action();
      };
      listeners.add(check);
      check();
    });
  }

  const running: RunningProcess = {
    name,
    pid,
    child,
    output: () => chunks.join(''),
    lines,
    logs: () =>
      lines().flatMap((line) => {
        const entry = parseJsonLine(line);
        return entry ? [entry] : [];
      }),
    waitForLine(match, timeoutMs = 30_000) {
      const test =
        typeof match === 'function'
          ? match
          : typeof match === 'string'
            ? (line: string) => line.includes(match)
            : (line: string) => match.test(line);
      return waitFor(() => lines().find(test), `line matching ${String(match)}`, timeoutMs);
    },
    waitForLog(msg, timeoutMs = 30_000) {
      return waitFor(() => running.logs().find((entry) => entry.msg === msg), `log "${msg}"`, timeoutMs);
    },
    kill(signal) {
      if (done) return;
      signalPid(pid, signal);
    },
    killGroup(signal) {
      if (done) return;
      signalPid(-pid, signal);
    },
    exited,
    waitForExit(timeoutMs = 30_000) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`${name} did not exit within ${timeoutMs} ms; its output:\n${tail()}`)),
          timeoutMs,
        );
        void exited.then((exit) => {
          clearTimeout(timer);
          resolve(exit);
        });
      });
    },
    get done() {
      return done;
    },
  };
  registry.add(running);
  return running;
}

/**
 * Starts `apps/<app>/src/main.ts` in one node process (Node runs the TypeScript itself), as
 * the Dockerfile does, with `env` as its whole configuration (plus PATH/HOME/NODE_OPTIONS).
 */
export function spawnApp(app: AppName, env: Record<string, string>, name: string = app): RunningProcess {
  return spawnProcess({ name, command: process.execPath, args: [`apps/${app}/src/main.ts`], env });
}

function signalPid(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
  }
}

function parseJsonLine(line: string): Record<string, unknown> | undefined {
  if (!line.startsWith('{')) return undefined;
  try {
    const value: unknown = JSON.parse(line);
    return value && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** SIGKILLs every process still running (whole groups) and waits for them to be gone. */
export async function stopAllProcesses(timeoutMs = 10_000): Promise<void> {
  const running = [...registry];
  for (const child of running) child.killGroup('SIGKILL');
  await Promise.race([Promise.all(running.map((child) => child.exited)), sleep(timeoutMs, undefined, { ref: false })]);
}

/** The test process ending (even by a signal) takes its children with it. */
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  const killAll = () => {
    for (const child of registry) child.killGroup('SIGKILL');
  };
  process.once('exit', killAll);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const onSignal = () => {
      killAll();
      // Keep the default behaviour (exit by this signal) unless someone else handles it.
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
    };
    process.once(signal, onSignal);
  }
}

/** A TCP port that was free a moment ago (for a child that cannot listen on port 0). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Polls `url` until it answers 200. */
export async function waitForHttp(
  url: string,
  { timeoutMs = 30_000, process: owner }: { timeoutMs?: number; process?: RunningProcess } = {},
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer';
  while (Date.now() < deadline) {
    if (owner?.done)
      throw new Error(
        `${owner.name} exited while waiting for ${url}; its output:\n${owner.lines().slice(-40).join('\n')}`,
      );
    try {
      const response = await request(url, { headersTimeout: 2_000, bodyTimeout: 2_000 });
      await response.body.dump();
      if (response.statusCode === 200) return;
      last = `status ${response.statusCode}`;
    } catch (error) {
      last = (error as Error).message;
    }
    await sleep(100);
  }
  throw new Error(`${url} did not answer 200 within ${timeoutMs} ms (last: ${last})`);
}

/** Starts the API and waits until it listens and `/healthz` answers; returns its base URL. */
export async function startApiProcess(
  env: Record<string, string>,
  name = 'api',
): Promise<{ process: RunningProcess; url: string }> {
  const api = spawnApp('api', { PORT: '0', HOST: '127.0.0.1', ...env }, name);
  const listening = await api.waitForLog('api listening', 60_000);
  const url = String(listening.url);
  await waitForHttp(`${url}/healthz`, { process: api });
  return { process: api, url };
}

/** Starts a worker and waits for its "worker started" line. */
export async function startWorkerProcess(env: Record<string, string>, name = 'worker'): Promise<RunningProcess> {
  const worker = spawnApp('worker', env, name);
  await worker.waitForLog('worker started', 60_000);
  return worker;
}

/**
 * A `redis-server` of the test's own on a free port (no persistence), e.g. with an evicting
 * policy. `port` restarts one where a stopped one listened, so clients reconnect to it.
 */
export async function startRedisServer(
  extraArgs: string[] = [],
  name = 'redis-server',
  port?: number,
): Promise<{ process: RunningProcess; url: string; port: number }> {
  port ??= await freePort();
  const server = spawnProcess({
    name,
    command: 'redis-server',
    args: [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--save',
      '',
      '--appendonly',
      'no',
      '--dir',
      '/tmp',
      ...extraArgs,
    ],
  });
  await server.waitForLine('Ready to accept connections', 15_000);
  return { process: server, url: `redis://127.0.0.1:${port}`, port };
}

/** Deletes every key under `prefix:` (SCAN + UNLINK; never FLUSHALL, the Redis is shared). */
export async function deleteKeysWithPrefix(redisUrl: string, prefix: string): Promise<void> {
  const redis = new Redis(redisUrl, { maxRetriesPerRequest: 1 });
  try {
    await unlinkPrefix(redis, prefix);
  } finally {
    redis.disconnect();
  }
}
