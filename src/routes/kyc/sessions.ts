import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { ERROR_GROUPS as E } from '../../errors/codes.js';
import { errorResponses } from '../../errors/schema.js';
import { notFound, resumeSession } from '../../sessions/start.js';
import { publicStatus } from '../../sessions/status.js';
import { sessionParamsSchema, sessionResponseSchema, startBodySchema, startResponseSchema } from './schemas.js';
import { startDeps } from './start-deps.js';

const sessionsRoute: FastifyPluginAsyncZod = async (app) => {
  app.get(
    '/sessions/:merchantBizId',
    {
      preHandler: [app.authenticate, app.limits.statusByUser],
      schema: {
        summary: "Status of one of the caller's verifications",
        tags: ['kyc'],
        security: [{ bearerAuth: [] }],
        params: sessionParamsSchema,
        response: { 200: sessionResponseSchema, ...errorResponses(E.overload, E.validation, E.auth, E.rateLimit, 'SESSION_NOT_FOUND') },
      },
    },
    async (request) => {
      // Looked up within the caller's own sessions: someone else's is indistinguishable from none.
      const session = await app.sessions.statusOf(request.user!.ref, request.params.merchantBizId);
      if (!session) throw notFound();
      return {
        merchantBizId: session.merchantBizId,
        status: publicStatus(session),
        transactionId: session.transactionId,
        expiresAt: session.expiresAt.toISOString(),
        ...(session.passed === 'Y' || session.passed === 'N' ? { passed: session.passed as 'Y' | 'N' } : {}),
        ...(session.subCode ? { subCode: session.subCode } : {}),
        attempts: session.attempts,
        maxAttempts: app.config.KYC_MAX_TRANSACTIONS_PER_SESSION,
        updatedAt: session.updatedAt.toISOString(),
      };
    },
  );

  app.post(
    '/sessions/:merchantBizId/resume',
    {
      onRequest: [app.authenticate, app.limits.startByIp],
      schema: {
        summary: "Resume one of the caller's verifications with a new transaction (calls Alibaba Initialize)",
        description:
          'A TransactionUrl works once. When the user reloads the verification page, loses the tab, or the page fails before ' +
          'a result (a broken camera), the frontend resumes: a new Initialize with the same merchantBizId, answered with a fresh ' +
          'transactionUrl. Allowed while the session has no outcome and no callback is being verified (pending, expired, or a ' +
          'start that failed); 409 SESSION_COMPLETED once it has one; 429 ATTEMPTS_EXHAUSTED past KYC_MAX_TRANSACTIONS_PER_SESSION ' +
          '(no Retry-After) or KYC_MAX_STARTS_PER_USER_PER_DAY (Retry-After). The body takes the same fields as a start.',
        tags: ['kyc'],
        security: [{ bearerAuth: [] }],
        params: sessionParamsSchema,
        body: startBodySchema,
        response: {
          201: startResponseSchema,
          ...errorResponses(E.overload, E.validation, E.body, E.auth, E.rateLimit, E.budget, E.upstream, 'DOC_TYPE_NOT_ALLOWED', 'RETURN_URL_NOT_ALLOWED', 'ATTEMPTS_EXHAUSTED', 'SESSION_NOT_FOUND', 'SESSION_COMPLETED', 'SESSION_STARTING'),
        },
      },
    },
    async (request, reply) => {
      const { deps, signal } = await startDeps(app, request, reply);
      const { created: _created, ...session } = await resumeSession(deps, request.user!, request.params.merchantBizId, request.body, signal);
      return reply.code(201).send(session);
    },
  );
};

export default sessionsRoute;
