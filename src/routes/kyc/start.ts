import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { ERROR_GROUPS as E } from '../../errors/codes.js';
import { errorResponses } from '../../errors/schema.js';
import { startSession } from '../../sessions/start.js';
import { startBodySchema, startResponseSchema } from './schemas.js';
import { startDeps } from './start-deps.js';

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
        description:
          'A merchantBizId is scoped to the caller: two users may each use `order1001`, and each gets a session of their own. ' +
          'Repeating a live one answers 200 with the same transaction (no second Initialize). A TransactionUrl works once: ' +
          'to get a new one (a reload, a lost tab, a broken camera), resume the session (POST /kyc/sessions/{merchantBizId}/resume).',
        tags: ['kyc'],
        security: [{ bearerAuth: [] }],
        body: startBodySchema,
        response: {
          200: startResponseSchema.describe('The live verification already started with this merchantBizId.'),
          201: startResponseSchema,
          ...errorResponses(E.overload, E.validation, E.body, E.auth, E.rateLimit, E.budget, E.upstream, 'DOC_TYPE_NOT_ALLOWED', 'RETURN_URL_NOT_ALLOWED', 'ATTEMPTS_EXHAUSTED', 'SESSION_EXPIRED', 'SESSION_FAILED', 'SESSION_COMPLETED', 'SESSION_STARTING', 'SESSION_INTERRUPTED'),
        },
      },
    },
    async (request, reply) => {
      const { deps, signal } = await startDeps(app, request, reply);
      const { created, ...session } = await startSession(deps, request.user!, request.body, signal);
      return reply.code(created ? 201 : 200).send(session);
    },
  );
};

export default startRoute;
