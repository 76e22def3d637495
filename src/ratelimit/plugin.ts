import fp from 'fastify-plugin';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { HttpError } from '../errors/http-error.js';

type PreHandler = (request: FastifyRequest, reply: FastifyReply) => Promise<void>;

declare module 'fastify' {
  interface FastifyInstance {
    /**
     * Inbound request limits (requests per minute, counted in Redis across instances), so one IP
     * or one user cannot drain the account's QPS budget. Used as route hooks, or awaited by a handler.
     */
    limits: { startByIp: PreHandler; startByUser: PreHandler; callbackByIp: PreHandler };
  }
}

const MINUTE_MS = 60_000;

/**
 * Builds the limits on @fastify/rate-limit's Redis store. Its per-route hook runs only one
 * limit per request, so each limit here is applied through `createRateLimit` and answered the
 * same way: 429 RATE_LIMITED with the standard x-ratelimit-* and Retry-After headers. When Redis
 * is unreachable the limits let requests through; the QPS budget still fails closed.
 */
export default fp(
  async (app) => {
    const { config } = app;
    const limit = (name: string, max: number, key: (req: FastifyRequest) => string | undefined): PreHandler => {
      const check = app.createRateLimit({ max, timeWindow: MINUTE_MS, keyGenerator: (req) => `${name}:${key(req) ?? 'anonymous'}` });
      return async (request, reply) => {
        const r = await check(request);
        if (r.isAllowed) return;
        reply.header('x-ratelimit-limit', r.max);
        reply.header('x-ratelimit-remaining', r.remaining);
        reply.header('x-ratelimit-reset', r.ttlInSeconds);
        if (r.isExceeded) {
          throw new HttpError(429, 'RATE_LIMITED', `Too many requests; retry in ${r.ttlInSeconds} s`, {
            'retry-after': String(r.ttlInSeconds),
          });
        }
      };
    };
    app.decorate('limits', {
      startByIp: limit('start:ip', config.RATE_LIMIT_PER_IP, (req) => req.ip),
      startByUser: limit('start:user', config.RATE_LIMIT_PER_USER, (req) => req.user?.ref),
      callbackByIp: limit('callback:ip', config.RATE_LIMIT_CALLBACK_PER_IP, (req) => req.ip),
    });
  },
  { name: 'limits', dependencies: ['config', '@fastify/rate-limit'] },
);
