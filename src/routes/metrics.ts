import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { ERROR_GROUPS as E } from '../errors/codes.js';
import { HttpError } from '../errors/http-error.js';
import { errorResponses } from '../errors/schema.js';
import { EXEMPT_FROM_OVERLOAD } from '../overload/options.js';

const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest();

/** GET /metrics: Prometheus text format; `Authorization: Bearer <METRICS_TOKEN>` when that is set. */
const metricsRoute: FastifyPluginAsyncZod = async (app) => {
  const token = app.config.METRICS_TOKEN;
  const expected = token ? digest(token) : undefined;
  app.get(
    '/metrics',
    {
      config: EXEMPT_FROM_OVERLOAD,
      schema: {
        summary: 'Prometheus metrics (text exposition format)',
        tags: ['ops'],
        ...(token ? { security: [{ metricsToken: [] }] } : {}),
        response: {
          200: { description: 'Prometheus text exposition format 0.0.4.', content: { 'text/plain': { schema: z.string() } } },
          ...(token ? errorResponses(E.auth) : errorResponses()),
        },
      },
    },
    async (request, reply) => {
      if (expected) {
        const match = /^Bearer (\S{1,1024})$/.exec(request.headers.authorization ?? '');
        if (!match?.[1]) {
          throw new HttpError(401, 'UNAUTHENTICATED', 'Authorization: Bearer <METRICS_TOKEN> is required', { 'www-authenticate': 'Bearer' });
        }
        if (!timingSafeEqual(digest(match[1]), expected)) {
          throw new HttpError(401, 'INVALID_TOKEN', 'The bearer token was rejected', { 'www-authenticate': 'Bearer error="invalid_token"' });
        }
      }
      const text = await app.metrics.registry.metrics();
      return reply.type(app.metrics.registry.contentType).send(text);
    },
  );
};

export default metricsRoute;
