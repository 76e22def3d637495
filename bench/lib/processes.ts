/** Starting the built service and simulator as child processes for benchmarks. */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { imageMemorySettings } from './runs.js';

export interface Child {
  process: ChildProcess;
  /** JSON log lines seen so far (non-JSON lines are dropped). */
  logs: Array<Record<string, unknown>>;
  stop(): Promise<void>;
}

export interface StartOptions {
  /** Which stdout lines to parse and keep (default: all); parsing every line of a flood costs CPU. */
  keepLine?: (line: string) => boolean;
  /** Extra node flags, e.g. --cpu-prof (not allowed in NODE_OPTIONS). */
  nodeArgs?: string[];
}

/** Spawns `node <script>` with `env` and waits until `GET url` answers. */
export async function startNode(script: string, env: Record<string, string>, readyUrl: string, options: StartOptions = {}): Promise<Child> {
  const child = spawn(process.execPath, [...(options.nodeArgs ?? []), script], {
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const logs: Array<Record<string, unknown>> = [];
  createInterface({ input: child.stdout! }).on('line', (line) => {
    if (options.keepLine && !options.keepLine(line)) return;
    try {
      logs.push(JSON.parse(line) as Record<string, unknown>);
    } catch {
      // not a log line
    }
  });
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${script} exited with ${child.exitCode}`);
    try {
      if ((await fetch(readyUrl)).ok) break;
    } catch {
      // not up yet
    }
    if (Date.now() > deadline) throw new Error(`${script} did not answer ${readyUrl}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    process: child,
    logs,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      await exited;
    },
  };
}

/** The node flags the service runs with in a benchmark: the Docker image's, unless BENCH_NODE_FLAGS says otherwise. */
export const serviceNodeFlags = (): string => process.env.BENCH_NODE_FLAGS ?? imageMemorySettings().NODE_OPTIONS;

/**
 * The built service (`node dist/server.js`) on 127.0.0.1:`port`, run as the Docker image runs it
 * (its node flags and MALLOC_ARENA_MAX, unless BENCH_NODE_FLAGS / MALLOC_ARENA_MAX say otherwise),
 * logging at info, with `env` on top of the settings every benchmark shares. Ready when /healthz answers.
 */
export function startService(port: number, env: Record<string, string>, options: Omit<StartOptions, 'nodeArgs'> = {}): Promise<Child> {
  return startNode('dist/server.js', {
    MALLOC_ARENA_MAX: process.env.MALLOC_ARENA_MAX ?? imageMemorySettings().MALLOC_ARENA_MAX,
    NODE_ENV: 'test',
    LOG_LEVEL: 'info',
    PORT: String(port),
    HOST: '127.0.0.1',
    REDIS_URL: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
    USER_ID_HASH_SECRET: 'bench-user-id-hash-secret-0123456789',
    ...env,
  }, `http://127.0.0.1:${port}/healthz`, { ...options, nodeArgs: serviceNodeFlags().split(' ').filter(Boolean) });
}

export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/** User + system CPU time of a process so far, in ms (from /proc: clock ticks of 10 ms). */
export function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

/** Resident set size of a process, in MB (from /proc). */
export function rssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN) / 1024;
}
