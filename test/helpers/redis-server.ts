import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort, waitFor } from './stack.js';

const run = promisify(execFile);

// Throwaway servers are killed when the test process exits, even when it never reaches `after`.
const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

/** Why the multi-server tests cannot run here (redis-server or redis-cli missing), or undefined. */
export function redisToolsMissing(): string | undefined {
  for (const bin of ['redis-server', 'redis-cli']) {
    if (spawnSync(bin, ['--version'], { stdio: 'ignore' }).error) return `${bin} is not installed (apt-get install redis-server)`;
  }
  return undefined;
}

/**
 * Spawns `redis-server args…` and waits until it accepts connections (`readyLine` in its log: a
 * Sentinel logs no "Ready…" line, but its ID once it listens). Killed if it does not get there.
 */
async function spawnRedis(args: string[], readyLine = 'Ready to accept connections'): Promise<ChildProcess> {
  const child = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  live.add(child);
  child.once('exit', () => live.delete(child));
  await new Promise<void>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`redis-server did not start: ${out}`));
    }, 5000);
    child.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      if (out.includes(readyLine)) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`redis-server exited (${code}): ${out}`));
    });
  });
  child.stdout!.resume();
  return child;
}

const NO_PERSISTENCE = ['--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--daemonize', 'no'];

/** A throwaway redis-server on `port` (no persistence), for fail-closed and recovery tests. */
export async function startRedis(port: number, extraArgs: string[] = []): Promise<ChildProcess> {
  return spawnRedis(['--port', String(port), ...NO_PERSISTENCE, ...extraArgs]);
}

export async function stop(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGKILL');
  await exited;
}

/** `redis-cli -p port args…`, its output. */
export async function redisCli(port: number, ...args: string[]): Promise<string> {
  return (await run('redis-cli', ['-p', String(port), ...args], { timeout: 5000 })).stdout;
}

/** waitFor a `check` that may fail while the servers come up (a failure counts as not yet). */
async function until(what: string, timeoutMs: number, check: () => Promise<boolean>): Promise<void> {
  await waitFor(what, async () => ((await check().catch(() => false)) ? true : undefined), timeoutMs);
}

/** Servers started together in a temp dir; `stop` kills them all and removes the dir, whatever state they are in. */
abstract class RedisGroup {
  protected readonly children: ChildProcess[] = [];
  constructor(readonly dir: string) {}

  async stop(): Promise<void> {
    await Promise.all(this.children.map((c) => stop(c)));
    await rm(this.dir, { recursive: true, force: true });
  }

  protected async add(start: () => Promise<ChildProcess>): Promise<ChildProcess> {
    const child = await start();
    this.children.push(child);
    return child;
  }
}

/**
 * A Redis Cluster of `masters` masters (no replicas) on spare ports, each with its cluster bus on a
 * spare port too (cluster-port), created with `redis-cli --cluster create`; ready once every node
 * says cluster_state:ok.
 */
export class RedisClusterServers extends RedisGroup {
  readonly ports: number[] = [];

  static async start(opts: { masters?: number; nodeTimeoutMs?: number } = {}): Promise<RedisClusterServers> {
    const cluster = new RedisClusterServers(await mkdtemp(join(tmpdir(), 'kyc-redis-cluster-')));
    try {
      for (let i = 0; i < (opts.masters ?? 3); i++) {
        const [port, busPort] = [await freePort(), await freePort()];
        cluster.ports.push(port);
        await cluster.add(() =>
          startRedis(port, [
            '--cluster-enabled', 'yes',
            '--cluster-port', String(busPort),
            '--cluster-config-file', join(cluster.dir, `nodes-${port}.conf`),
            '--cluster-node-timeout', String(opts.nodeTimeoutMs ?? 2000),
            '--dir', cluster.dir,
          ]),
        );
      }
      await run('redis-cli', ['--cluster', 'create', ...cluster.addresses, '--cluster-replicas', '0', '--cluster-yes'], { timeout: 20_000 });
      for (const port of cluster.ports) {
        await until(`cluster_state:ok on ${port}`, 15_000, async () => (await redisCli(port, 'cluster', 'info')).includes('cluster_state:ok'));
      }
      return cluster;
    } catch (err) {
      await cluster.stop();
      throw err;
    }
  }

  get addresses(): string[] {
    return this.ports.map((p) => `127.0.0.1:${p}`);
  }

  /** SIGKILLs the node on `port`. */
  kill(port: number): Promise<void> {
    return stop(this.children[this.ports.indexOf(port)]);
  }
}

/**
 * A master, one replica and one Sentinel watching them (quorum 1) on spare ports: the Sentinel
 * declares the master down after `downAfterMs` and promotes the replica. Ready once the Sentinel
 * knows the replica (a failover needs one).
 */
export class SentinelServers extends RedisGroup {
  masterPort = 0;
  replicaPort = 0;
  sentinelPort = 0;
  private master: ChildProcess | undefined;

  static async start(opts: { name: string; downAfterMs?: number; failoverTimeoutMs?: number }): Promise<SentinelServers> {
    const set = new SentinelServers(await mkdtemp(join(tmpdir(), 'kyc-redis-sentinel-')));
    try {
      [set.masterPort, set.replicaPort, set.sentinelPort] = [await freePort(), await freePort(), await freePort()];
      // No 5-s wait before the replica's first sync (diskless sync's default delay); the replica
      // writes the synced data set to a file, in the temp dir.
      set.master = await set.add(() => startRedis(set.masterPort, ['--repl-diskless-sync-delay', '0', '--dir', set.dir]));
      await set.add(() => startRedis(set.replicaPort, ['--replicaof', '127.0.0.1', String(set.masterPort), '--dir', set.dir]));
      await until('the replica in sync', 15_000, async () =>
        (await redisCli(set.replicaPort, 'info', 'replication')).includes('master_link_status:up'),
      );
      // Sentinel rewrites its config file: it must be a file of its own, writable.
      const conf = join(set.dir, 'sentinel.conf');
      await writeFile(
        conf,
        [
          `port ${set.sentinelPort}`,
          'bind 127.0.0.1',
          `dir ${set.dir}`,
          `sentinel monitor ${opts.name} 127.0.0.1 ${set.masterPort} 1`,
          `sentinel down-after-milliseconds ${opts.name} ${opts.downAfterMs ?? 1000}`,
          `sentinel failover-timeout ${opts.name} ${opts.failoverTimeoutMs ?? 3000}`,
          '',
        ].join('\n'),
      );
      await set.add(() => spawnRedis([conf, '--sentinel'], 'Sentinel ID is'));
      await until('the Sentinel to know the replica', 15_000, async () => {
        const replicas = await redisCli(set.sentinelPort, 'sentinel', 'replicas', opts.name);
        return replicas.includes(String(set.replicaPort)) && !/s_down|disconnected/.test(replicas);
      });
      return set;
    } catch (err) {
      await set.stop();
      throw err;
    }
  }

  get sentinels(): string {
    return `127.0.0.1:${this.sentinelPort}`;
  }

  /** SIGKILLs the master. */
  killMaster(): Promise<void> {
    return stop(this.master);
  }
}
