import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { errorResponseSchema } from '../../errors/schema.js';
import { startSession } from '../../sessions/start.js';
import { startBodySchema, startResponseSchema } from './schemas.js';

const startRoute: FastifyPluginAsyncZod = async (app) => {
  app.post(
    '/start',
    {
      preHandler: [app.limits.startByIp, app.authenticate, app.limits.startByUser],
      schema: {
        summary: 'Start an eKYC verification (calls Alibaba Initialize)',
        tags: ['kyc'],
        security: [{ bearerAuth: [] }],
        body: startBodySchema,
        response: {
          200: startResponseSchema.describe('The live verification already started with this merchantBizId.'),
          201: startResponseSchema,
          400: errorResponseSchema,
          401: errorResponseSchema,
          409: errorResponseSchema,
          429: errorResponseSchema,
          502: errorResponseSchema,
          503: errorResponseSchema,
          504: errorResponseSchema,
        },
      },
    },
    async (request, reply) => {
      // Give up the upstream wait (and a queued budget slot) when the caller goes away.
      const abort = new AbortController();
      request.raw.once('close', () => {
        if (!reply.sent) abort.abort();
      });
      const user = request.user!;
      const { created, ...session } = await startSession(
        { config: app.config, sessions: app.sessions, cloudauth: app.cloudauth, log: request.log },
        user.ref,
        request.body,
        abort.signal,
      );
      return reply.code(created ? 201 : 200).send(session);
    },
  );
};

export default startRoute;
