import fp from 'fastify-plugin';
import { normalizeIP } from '@fastify/rate-limit';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Config } from '../config/schema.js';
import { HttpError } from '../errors/http-error.js';
import { LeasedLimit } from './leases.js';

type PreHandler = (request: FastifyRequest, reply: FastifyReply) => Promise<void>;

/**
 * A budget of failures per address (wrong credentials). Unlike the request limits it is not
 * counted on every request: `count` runs only once a credential was refused.
 */
export interface FailureLimit {
  /** Counts one failure of the request's address; 429 RATE_LIMITED once the address is over its limit. */
  count: PreHandler;
  /**
   * 429 RATE_LIMITED, counting nothing, when the address has no failures left this minute: run it
   * before a credential is compared, so that no guess beyond the limit is ever tried.
   */
  guard: PreHandler;
}

declare module 'fastify' {
  interface FastifyInstance {
    /**
     * Inbound request limits (requests per minute, counted in Redis across instances), so one IP
     * or one user cannot drain the account's QPS budget or the database. Used as route hooks, or
     * awaited by a handler or by app.authenticate*.
     */
    limits: {
      /** POST /kyc/start per address, counted after authentication: bad tokens cannot use it up. */
      startByIp: PreHandler;
      startByUser: PreHandler;
      /** Counted in leases (leases.ts): the route frontends poll. */
      statusByUser: PreHandler;
      callbackByIp: PreHandler;
      internalByIp: PreHandler;
      /** Failed caller-JWT authentications per address (app.authenticate counts them). */
      authFailuresByIp: FailureLimit;
      /** Wrong x-api-key values per address on /internal/* (app.authenticateApiKey counts and guards). */
      apiKeyFailuresByIp: FailureLimit;
    };
  }
}

const MINUTE_MS = 60_000;

/**
 * The address a request is counted under: IPv6 addresses by their /64 (a single host usually
 * holds a whole /64, so counting each address would let it rotate freely), IPv4-mapped IPv6 as IPv4.
 */
const addressOf = (req: FastifyRequest) => normalizeIP(req.ip);

function tooMany(message: string, ttlInSeconds: number): HttpError {
  const seconds = Math.max(1, ttlInSeconds);
  return new HttpError(429, 'RATE_LIMITED', `${message}; retry in ${seconds} s`, { 'retry-after': String(seconds) });
}

/**
 * Builds the limits on @fastify/rate-limit's Redis store. Its per-route hook runs only one
 * limit per request, so each limit here is applied through `createRateLimit` and answered the
 * same way: 429 RATE_LIMITED with the standard x-ratelimit-* and Retry-After headers. When Redis
 * is unreachable the limits let requests through; the QPS budget still fails closed.
 */
/** Where the service's rate-limit counters live in Redis (one account's deployment shares them). */
export const rateLimitNamespace = (config: Pick<Config, 'CLOUDAUTH_ACCOUNT'>): string => `kyc:ratelimit:${config.CLOUDAUTH_ACCOUNT}:`;

/** The standard x-ratelimit-* headers of a limit's answer. */
function limitHeaders(reply: FastifyReply, max: number, remaining: number, ttlInSeconds: number): void {
  reply.header('x-ratelimit-limit', max);
  reply.header('x-ratelimit-remaining', remaining);
  reply.header('x-ratelimit-reset', ttlInSeconds);
}

export default fp(
  async (app) => {
    const { config } = app;
    const counter = (name: string, max: number, key: (req: FastifyRequest) => string | undefined) =>
      app.createRateLimit({ max, timeWindow: MINUTE_MS, keyGenerator: (req) => `${name}:${key(req) ?? 'anonymous'}` });

    /** Counts every request it sees; x-ratelimit-* on each answer. */
    const limit = (name: string, max: number, key: (req: FastifyRequest) => string | undefined): PreHandler => {
      const check = counter(name, max, key);
      return async (request, reply) => {
        const r = await check(request);
        if (r.isAllowed) return;
        limitHeaders(reply, r.max, r.remaining, r.ttlInSeconds);
        if (r.isExceeded) throw tooMany('Too many requests', r.ttlInSeconds);
      };
    };

    /**
     * Like `limit`, counted in Redis in leases of up to 16 requests (leases.ts): never more than `max`
     * across instances, with a Redis round trip for 1 request in 16 of a busy key.
     */
    const leased = (name: string, max: number, key: (req: FastifyRequest) => string | undefined): PreHandler => {
      const counter = new LeasedLimit(app.redis, { keyPrefix: `${rateLimitNamespace(config)}lease:${name}:`, max, windowMs: MINUTE_MS });
      return async (request, reply) => {
        const r = await counter.take(key(request) ?? 'anonymous');
        limitHeaders(reply, r.max, r.remaining, r.ttlInSeconds);
        if (!r.allowed) throw tooMany('Too many requests', r.ttlInSeconds);
      };
    };

    /**
     * Counts only what `count` is called for. Its x-ratelimit-* headers go only on its own 429s:
     * the other answers carry those of the request limits, if any.
     */
    const failures = (name: string, max: number, message: string): FailureLimit => {
      const check = counter(name, max, addressOf);
      const refuse = (reply: FastifyReply, r: { max: number; ttlInSeconds: number }) => {
        limitHeaders(reply, r.max, 0, r.ttlInSeconds);
        return tooMany(message, r.ttlInSeconds);
      };
      return {
        async count(request, reply) {
          const r = await check(request);
          if (!r.isAllowed && r.isExceeded) throw refuse(reply, r);
        },
        async guard(request, reply) {
          const r = await check(request, { increment: false });
          // remaining is max when Redis could not be read (skipOnError): the guard lets it through.
          if (!r.isAllowed && r.remaining === 0) throw refuse(reply, r);
        },
      };
    };

    app.decorate('limits', {
      startByIp: limit('start:ip', config.RATE_LIMIT_PER_IP, addressOf),
      startByUser: limit('start:user', config.RATE_LIMIT_PER_USER, (req) => req.user?.ref),
      statusByUser: leased('status:user', config.RATE_LIMIT_STATUS_PER_USER, (req) => req.user?.ref),
      callbackByIp: limit('callback:ip', config.RATE_LIMIT_CALLBACK_PER_IP, addressOf),
      internalByIp: limit('internal:ip', config.RATE_LIMIT_INTERNAL_PER_IP, addressOf),
      authFailuresByIp: failures('auth-failures:ip', config.RATE_LIMIT_AUTH_FAILURES_PER_IP, 'Too many failed authentications from this address'),
      apiKeyFailuresByIp: failures('api-key-failures:ip', config.RATE_LIMIT_INTERNAL_KEY_FAILURES_PER_IP, 'Too many wrong API keys from this address'),
    });
  },
  { name: 'limits', dependencies: ['config', 'redis', '@fastify/rate-limit'] },
);
