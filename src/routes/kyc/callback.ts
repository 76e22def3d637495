import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { ERROR_GROUPS as E } from '../../errors/codes.js';
import { errorResponses } from '../../errors/schema.js';
import { acceptCallback, rejectedCallback } from '../../sessions/callback.js';
import { CALLBACK_PATH, isForged, type CallbackGate } from './callback-gate.js';
import { callbackQuerySchema, callbackResponseSchema } from './schemas.js';

/**
 * Alibaba's webhook: GET <CallbackUrl>?transactionId&passed&subCode&callbackToken (any spelling).
 * The same URL without result fields is Alibaba's reachability probe before Initialize: 200.
 */
const callbackRoute: FastifyPluginAsyncZod<{ callbackGate?: CallbackGate | undefined }> = async (app, { callbackGate }) => {
  // Most forged callbacks never get here: the gate refuses them at the HTTP server, for less.
  callbackGate?.arm({
    tokens: app.callbackTokens,
    onRefused: (seconds) => app.metrics.forgedCallbackAtGate(CALLBACK_PATH, seconds),
    log: app.log,
  });

  app.get(
    '/callback',
    {
      // A token this service never made is refused first, before validation, for the price of an
      // HMAC (no Redis, no database): what the gate answers, for what reaches Fastify. What gets
      // through is limited per IP; probes write nothing and are not limited.
      onRequest: async (request) => {
        if (!isForged(app.callbackTokens, request.query as Record<string, unknown>)) return;
        app.metrics.forgedCallback();
        request.logQuietly = true;
        throw rejectedCallback();
      },
      preHandler: async (request, reply) => {
        if (request.query.kind === 'probe') return;
        await app.limits.callbackByIp(request, reply);
      },
      schema: {
        summary: 'Verification result webhook (called by Alibaba Cloud)',
        description:
          'Alibaba adds transactionId, passed, subCode and the CallbackToken to the registered CallbackUrl; each field is ' +
          'accepted under every spelling Alibaba uses (transactionId/TransactionId, passed/Passed, subCode/subcode/SubCode, ' +
          'callbackToken/CallbackToken), and one field given under two spellings is refused (400). A GET or HEAD with none of ' +
          'the result fields is Alibaba checking that the CallbackUrl is reachable: 200 {"result":"reachable"}, nothing written. ' +
          'A callback for an erased session is answered 200 {"result":"ignored"} and changes nothing.',
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
      if (q.kind === 'probe') {
        app.metrics.callbackProbe(request.method);
        return { result: 'reachable' as const };
      }
      const { kind: _kind, ...input } = q;
      const deps = { sessions: app.sessions, log: request.log, requestCheck: app.results.requestCheck, notify: app.events.dispatch };
      const result = await app.metrics.callback(acceptCallback(deps, input));
      return { result };
    },
  );
};

export default callbackRoute;
