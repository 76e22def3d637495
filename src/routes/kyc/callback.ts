import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { errorResponseSchema } from '../../errors/schema.js';
import { acceptCallback } from '../../sessions/callback.js';
import { callbackQuerySchema, callbackResponseSchema } from './schemas.js';

/** Alibaba's webhook: GET <CallbackUrl>?transactionId&passed&subCode&callbackToken. */
const callbackRoute: FastifyPluginAsyncZod = async (app) => {
  app.get(
    '/callback',
    {
      preHandler: app.limits.callbackByIp,
      schema: {
        summary: 'Verification result webhook (called by Alibaba Cloud)',
        tags: ['kyc'],
        querystring: callbackQuerySchema,
        response: {
          200: callbackResponseSchema,
          400: errorResponseSchema,
          403: errorResponseSchema,
          409: errorResponseSchema,
          429: errorResponseSchema,
        },
      },
    },
    async (request) => {
      const q = request.query;
      const result = await acceptCallback(
        { sessions: app.sessions, log: request.log, requestCheck: app.results.requestCheck },
        {
          transactionId: q.transactionId,
          passed: q.passed,
          subCode: q.subCode ?? q.subcode,
          callbackToken: q.callbackToken,
          merchantBizId: q.merchantBizId,
        },
      );
      return { result };
    },
  );
};

export default callbackRoute;
