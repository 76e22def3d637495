import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { ERROR_GROUPS as E } from '../../errors/codes.js';
import { errorResponses } from '../../errors/schema.js';
import { startSession } from '../../sessions/start.js';
import { startBodySchema, startResponseSchema } from './schemas.js';

const startRoute: FastifyPluginAsyncZod = async (app) => {
  app.post(
    '/start',
    {
      // Authenticated, then counted per address, before the body is even parsed (invalid bodies
      // count too). Failed authentications count in their own limit (app.authenticate), so bad
      // tokens cannot use up the starts of the valid callers behind the same address.
      onRequest: [app.authenticate, app.limits.startByIp],
      schema: {
        summary: 'Start an eKYC verification (calls Alibaba Initialize)',
        tags: ['kyc'],
        security: [{ bearerAuth: [] }],
        body: startBodySchema,
        response: {
          200: startResponseSchema.describe('The live verification already started with this merchantBizId.'),
          201: startResponseSchema,
          ...errorResponses(E.overload, E.validation, E.body, E.auth, E.rateLimit, E.budget, E.upstream, 'DOC_TYPE_NOT_ALLOWED', 'RETURN_URL_NOT_ALLOWED', 'MERCHANT_BIZ_ID_TAKEN', 'SESSION_EXPIRED', 'SESSION_FAILED', 'SESSION_COMPLETED', 'SESSION_STARTING', 'SESSION_INTERRUPTED'),
        },
      },
    },
    async (request, reply) => {
      // The budget's look-ahead (read-only) goes to Redis with the per-user limit: one round trip
      // for both. startSession acts on its verdict; it is dropped if the limit refuses.
      const lookAhead = app.budget.check('Initialize');
      lookAhead.catch(() => {}); // handled: startSession awaits it
      await app.limits.startByUser(request, reply);
      // Give up the upstream wait (and a queued budget slot) when the caller goes away.
      const abort = new AbortController();
      request.raw.once('close', () => {
        if (!reply.sent) abort.abort();
      });
      const user = request.user!;
      const { created, ...session } = await startSession(
        {
          config: app.config,
          sessions: app.sessions,
          callbackTokens: app.callbackTokens,
          lookAhead,
          cloudauth: app.cloudauth,
          log: request.log,
          onUpstreamRequestId: (id) => {
            request.upstreamRequestId = id;
          },
        },
        user.ref,
        request.body,
        abort.signal,
      );
      return reply.code(created ? 201 : 200).send(session);
    },
  );
};

export default startRoute;
