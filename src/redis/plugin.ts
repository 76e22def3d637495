import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import fp from 'fastify-plugin';
import { createRedis, redisForm, type RedisClient } from './client.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** One server, a Sentinel-managed master or a Cluster (REDIS_URL, REDIS_SENTINELS, REDIS_CLUSTER_NODES). */
    redis: RedisClient;
  }
}

/**
 * One shared client. Commands fail fast while Redis is unreachable (see options.ts), so
 * everything that depends on Redis fails closed instead of hanging; ioredis keeps reconnecting in
 * the background and recovery needs no restart.
 */
export default fp(
  async (app) => {
    const redis = createRedis(app.config);
    const form = redisForm(app.config);
    redis.on('error', (err: Error) => app.log.warn({ err: { message: err.message }, redis: form }, 'redis connection error'));
    // A Cluster reports each node's connection errors apart (its 'error' is about the cluster).
    redis.on('node error', (err: Error, node: string) =>
      app.log.warn({ err: { message: err.message }, redis: form, node }, 'redis connection error'),
    );
    app.decorate<RedisClient>('redis', redis);
    // Give the first connection a moment so the first requests don't fail closed needlessly;
    // a Redis that is down at start-up does not stop the service (readiness reports it).
    const ac = new AbortController();
    await Promise.race([once(redis, 'ready', { signal: ac.signal }), sleep(2000, undefined, { signal: ac.signal })]).catch(() => {});
    ac.abort();
    app.addHook('onClose', async () => {
      redis.disconnect();
    });
  },
  { name: 'redis', dependencies: ['config'] },
);
