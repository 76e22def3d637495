import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { ERROR_GROUPS as E } from '../../errors/codes.js';
import { errorResponses } from '../../errors/schema.js';
import { HttpError } from '../../errors/http-error.js';
import { publicStatus } from '../../sessions/status.js';
import { sessionParamsSchema, sessionResponseSchema } from './schemas.js';

const sessionsRoute: FastifyPluginAsyncZod = async (app) => {
  app.get(
    '/sessions/:merchantBizId',
    {
      preHandler: [app.authenticate, app.limits.statusByUser],
      schema: {
        summary: 'Status of one of the caller\'s verifications',
        tags: ['kyc'],
        security: [{ bearerAuth: [] }],
        params: sessionParamsSchema,
        response: { 200: sessionResponseSchema, ...errorResponses(E.overload, E.validation, E.auth, E.rateLimit, 'SESSION_NOT_FOUND') },
      },
    },
    async (request) => {
      const session = await app.sessions.findByMerchantBizId(request.params.merchantBizId);
      // Someone else's session is indistinguishable from no session.
      if (!session || session.userRef !== request.user!.ref) {
        throw new HttpError(404, 'SESSION_NOT_FOUND', 'No such verification');
      }
      return {
        merchantBizId: session.merchantBizId,
        status: publicStatus(session),
        transactionId: session.transactionId,
        expiresAt: session.expiresAt.toISOString(),
        ...(session.passed === 'Y' || session.passed === 'N' ? { passed: session.passed as 'Y' | 'N' } : {}),
        ...(session.subCode ? { subCode: session.subCode } : {}),
        updatedAt: session.updatedAt.toISOString(),
      };
    },
  );
};

export default sessionsRoute;
