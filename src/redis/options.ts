import type { ClusterOptions, RedisOptions } from 'ioredis';

/** Reconnect forever, quickly (≤ 500 ms between attempts), so the budget recovers by itself soon after Redis returns. */
const reconnectQuickly = (times: number): number => Math.min(50 * times, 500);

/**
 * What makes one connection fail fast, in every form (a server, a Sentinel-managed master, each
 * node of a Cluster).
 *
 * - maxRetriesPerRequest: 0 + autoResendUnfulfilledCommands: false — a command in
 *   flight when the connection drops is failed, not replayed after reconnect.
 * - commandTimeout: 1000 — backstop for every command. Keep it ABOVE QpsBudget's
 *   own deadline (commandTimeoutMs, default 300 ms): ioredis drops the reply of a
 *   command it timed out, so a reservation that Redis made late could then not be
 *   given back (it would only waste a slot, never exceed the limit).
 * - connectTimeout: 1000 — detect an unreachable server quickly.
 */
const failFastConnection = {
  maxRetriesPerRequest: 0,
  autoResendUnfulfilledCommands: false,
  commandTimeout: 1000,
  connectTimeout: 1000,
} as const satisfies RedisOptions;

/**
 * Options of the service's Redis connection: every command fails fast, so what depends on Redis
 * (the QPS budget above all) fails closed instead of hanging or acting late.
 *
 * - enableOfflineQueue: false — while disconnected, commands fail at once instead
 *   of being queued and executed later (a queued reservation would be made for a
 *   caller that has long given up, wasting budget).
 * - the connection's own fail-fast options (failFastConnection above).
 * - retryStrategy — reconnect forever, quickly.
 */
export const failFastRedisOptions: RedisOptions = {
  enableOfflineQueue: false,
  ...failFastConnection,
  retryStrategy: reconnectQuickly,
};

/**
 * The same with Sentinel (on top of failFastRedisOptions): ioredis asks the Sentinels for the
 * master at every (re)connection, so after a failover the reconnect finds the new master.
 *
 * - sentinelCommandTimeout: 1000 — a Sentinel that hangs is skipped for the next one.
 * - failoverDetector: true — listen for Sentinel's +switch-master and drop the connection to the
 *   old master at once, rather than keep writing to it while it is cut off from the Sentinels
 *   (two masters would mean two QPS budgets). It costs one connection per Sentinel.
 * - sentinelRetryStrategy (ioredis's default: ≤ 1 s between rounds) when no Sentinel answers.
 */
export const failFastSentinelOptions: RedisOptions = {
  ...failFastRedisOptions,
  sentinelCommandTimeout: 1000,
  failoverDetector: true,
};

/**
 * The same with a Cluster. ioredis keeps one connection per node (its own retryStrategy and
 * offline queue: a lost node is found again through the slot map), so the fail-fast options
 * are set at two levels:
 *
 * - enableOfflineQueue: false — while the cluster is not ready, or the node owning a key is
 *   not connected, commands fail at once.
 * - redisOptions: each node connection's fail-fast options.
 * - clusterRetryStrategy — when every node is lost, reconnect forever, quickly.
 * - slotsRefreshTimeout: 1000 — a slot map refresh that hangs gives up quickly.
 *
 * MOVED/ASK redirections and the retries after a node's connection closed (retryDelayOnFailover,
 * 100 ms, with a slot map refresh) keep ioredis's defaults: they are how a Cluster heals after a
 * failover or a resharding. Such a retry can run a command after its caller gave up: the QPS
 * budget gives back a reservation whose reply arrives after its deadline, so it still never
 * lets a call through late.
 */
export const failFastClusterOptions: ClusterOptions = {
  enableOfflineQueue: false,
  redisOptions: failFastConnection,
  clusterRetryStrategy: reconnectQuickly,
  slotsRefreshTimeout: 1000,
};
