import { Cluster, Redis } from 'ioredis';
import type { Config } from '../config/schema.js';
import { failFastClusterOptions, failFastRedisOptions, failFastSentinelOptions } from './options.js';

/**
 * The service's Redis client: one server (or a Sentinel-managed master) or a Cluster. Both have
 * the same commands, scripts (defineCommand), MULTI, events and status, so the code that uses
 * Redis takes either. On a Cluster, every script and MULTI must touch keys of one hash slot:
 * keys used together share a hash tag (`{...}`).
 */
export type RedisClient = Redis | Cluster;

/** Which of the three configuration forms is in use (exactly one is set; the config checks it). */
type RedisForm = 'server' | 'sentinel' | 'cluster';

type RedisConfig = Pick<
  Config,
  'REDIS_URL' | 'REDIS_SENTINELS' | 'REDIS_SENTINEL_NAME' | 'REDIS_SENTINEL_PASSWORD' | 'REDIS_CLUSTER_NODES' | 'REDIS_PASSWORD'
>;

export function redisForm(config: RedisConfig): RedisForm {
  if (config.REDIS_CLUSTER_NODES.length > 0) return 'cluster';
  if (config.REDIS_SENTINELS.length > 0) return 'sentinel';
  return 'server';
}

/**
 * A client for the configured form, failing fast in every form (options.ts), so everything that
 * depends on Redis fails closed instead of hanging; ioredis keeps reconnecting in the background
 * (to the new master after a Sentinel failover, along the slot map on a Cluster) and recovery
 * needs no restart.
 */
export function createRedis(config: RedisConfig): RedisClient {
  const password = config.REDIS_PASSWORD;
  const form = redisForm(config);
  if (form === 'cluster') {
    return new Cluster(config.REDIS_CLUSTER_NODES, {
      ...failFastClusterOptions,
      redisOptions: { ...failFastClusterOptions.redisOptions, ...(password ? { password } : {}) },
    });
  }
  if (form === 'sentinel') {
    return new Redis({
      ...failFastSentinelOptions,
      sentinels: config.REDIS_SENTINELS,
      name: config.REDIS_SENTINEL_NAME,
      ...(password ? { password } : {}),
      ...(config.REDIS_SENTINEL_PASSWORD ? { sentinelPassword: config.REDIS_SENTINEL_PASSWORD } : {}),
    });
  }
  if (!config.REDIS_URL) throw new TypeError('no Redis configured (REDIS_URL, REDIS_SENTINELS or REDIS_CLUSTER_NODES)');
  return new Redis(config.REDIS_URL, failFastRedisOptions);
}

/**
 * A Lua script as a function (defineCommand, once per client): `script(...args)` runs it on the
 * keys and arguments given, keys first (`numberOfKeys` of them).
 */
export function defineScript<R>(redis: RedisClient, name: string, lua: string, numberOfKeys = 1): (...args: Array<string | number>) => Promise<R> {
  const commands = redis as unknown as Record<string, ((...args: Array<string | number>) => Promise<R>) | undefined>;
  if (typeof commands[name] !== 'function') redis.defineCommand(name, { numberOfKeys, lua });
  return (...args) => commands[name]!.apply(redis, args);
}

/**
 * Readiness: resolves when Redis serves commands. One server or a Sentinel-managed master: PING.
 * A Cluster: CLUSTER INFO on one node must say `cluster_state:ok` (every slot is served; with
 * Redis's default cluster-require-full-coverage a cluster missing a slot refuses every command),
 * which a PING to one node would not tell.
 */
export async function checkRedis(redis: RedisClient): Promise<void> {
  if (!(redis instanceof Cluster)) {
    await redis.ping();
    return;
  }
  const info = await redis.cluster('INFO');
  const state = /^cluster_state:(\w+)/m.exec(info)?.[1];
  if (state !== 'ok') throw new Error(`cluster_state: ${state ?? 'unknown'}`);
}
