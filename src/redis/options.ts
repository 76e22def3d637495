import type { RedisOptions } from 'ioredis';

/**
 * Options of the service's Redis connection: every command fails fast, so what depends on Redis
 * (the QPS budget above all) fails closed instead of hanging or acting late.
 *
 * - enableOfflineQueue: false — while disconnected, commands fail at once instead
 *   of being queued and executed later (a queued reservation would be made for a
 *   caller that has long given up, wasting budget).
 * - maxRetriesPerRequest: 0 + autoResendUnfulfilledCommands: false — a command in
 *   flight when the connection drops is failed, not replayed after reconnect.
 * - commandTimeout: 1000 — backstop for every command. Keep it ABOVE QpsBudget's
 *   own deadline (commandTimeoutMs, default 300 ms): ioredis drops the reply of a
 *   command it timed out, so a reservation that Redis made late could then not be
 *   given back (it would only waste a slot, never exceed the limit).
 * - connectTimeout: 1000 — detect an unreachable server quickly.
 * - retryStrategy — reconnect forever, quickly (≤ 500 ms between attempts), so the
 *   budget recovers by itself soon after Redis returns.
 */
export const failFastRedisOptions: RedisOptions = {
  enableOfflineQueue: false,
  maxRetriesPerRequest: 0,
  autoResendUnfulfilledCommands: false,
  commandTimeout: 1000,
  connectTimeout: 1000,
  retryStrategy: (times: number) => Math.min(50 * times, 500),
};
