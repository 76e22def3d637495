import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { ERROR_GROUPS as E } from '../../errors/codes.js';
import { errorResponses } from '../../errors/schema.js';
import { acceptCallback, rejectedCallback } from '../../sessions/callback.js';
import { callbackQuerySchema, callbackResponseSchema } from './schemas.js';

/** Alibaba's webhook: GET <CallbackUrl>?transactionId&passed&subCode&callbackToken. */
const callbackRoute: FastifyPluginAsyncZod = async (app) => {
  app.get(
    '/callback',
    {
      // A token this service never made is refused first, for the price of an HMAC (no Redis, no
      // database), so a forged flood costs little; what gets through is limited per IP.
      preHandler: [
        async (request) => {
          if (app.callbackTokens.isGenuine(request.query.callbackToken)) return;
          app.metrics.forgedCallback();
          request.logQuietly = true;
          throw rejectedCallback();
        },
        app.limits.callbackByIp,
      ],
      schema: {
        summary: 'Verification result webhook (called by Alibaba Cloud)',
        tags: ['kyc'],
        querystring: callbackQuerySchema,
        response: {
          200: callbackResponseSchema,
          ...errorResponses(E.overload, E.validation, E.rateLimit, 'CALLBACK_REJECTED', 'CALLBACK_CONFLICT'),
        },
      },
    },
    async (request) => {
      const q = request.query;
      const result = await app.metrics.callback(acceptCallback(
        { sessions: app.sessions, log: request.log, requestCheck: app.results.requestCheck },
        {
          transactionId: q.transactionId,
          passed: q.passed,
          subCode: q.subCode ?? q.subcode,
          callbackToken: q.callbackToken,
          merchantBizId: q.merchantBizId,
        },
      ));
      return { result };
    },
  );
};

export default callbackRoute;
