import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import fp from 'fastify-plugin';
import { Redis } from 'ioredis';
import { failFastRedisOptions } from './options.js';

declare module 'fastify' {
  interface FastifyInstance {
    redis: Redis;
  }
}

/**
 * One shared connection. Commands fail fast while Redis is unreachable (see options.ts), so
 * everything that depends on Redis fails closed instead of hanging; ioredis keeps reconnecting in
 * the background and recovery needs no restart.
 */
export function createRedis(url: string): Redis {
  return new Redis(url, failFastRedisOptions);
}

export default fp(
  async (app) => {
    const redis = createRedis(app.config.REDIS_URL);
    redis.on('error', (err) => app.log.warn({ err: { message: err.message } }, 'redis connection error'));
    app.decorate('redis', redis);
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
