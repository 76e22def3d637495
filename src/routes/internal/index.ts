import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { ERROR_GROUPS as E } from '../../errors/codes.js';
import { errorResponses } from '../../errors/schema.js';
import { HttpError } from '../../errors/http-error.js';
import { publicStatus, PUBLIC_STATUSES } from '../../sessions/status.js';
import { sessionParamsSchema } from '../kyc/schemas.js';

const detailsSchema = z
  .object({
    extBasicInfo: z.unknown(),
    extIdInfo: z.unknown(),
    extFaceInfo: z.unknown(),
    extRiskInfo: z.unknown(),
  })
  .nullable()
  .describe("CheckResult's personal data (decrypted), or null when not stored or purged.");

const internalSessionSchema = z
  .object({
    merchantBizId: z.string(),
    status: z.enum(PUBLIC_STATUSES),
    transactionId: z.string().nullable(),
    passed: z.string().nullable(),
    subCode: z.string().nullable(),
    callbackPassed: z.string().nullable(),
    callbackSubCode: z.string().nullable(),
    errorCode: z.string().nullable(),
    expiresAt: z.iso.datetime(),
    checkedAt: z.iso.datetime().nullable(),
    detailsPurgedAt: z.iso.datetime().nullable(),
    details: detailsSchema,
  })
  .describe('BackOfficeSession');

/** Parses one Ext* JSON text; a value that is not JSON is returned as text. */
const parseExt = (text: unknown) => {
  if (typeof text !== 'string') return null;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
};

/** The merchant's back office: full session data, including decrypted details. API key in `x-api-key`. */
const internalRoutes: FastifyPluginAsyncZod = async (app) => {
  app.addHook('onRequest', app.limits.internalByIp);
  app.addHook('onRequest', app.authenticateApiKey);

  app.get(
    '/kyc/sessions/:merchantBizId',
    {
      schema: {
        summary: 'Back office: a session with its decrypted result details',
        tags: ['internal'],
        security: [{ apiKey: [] }],
        params: sessionParamsSchema,
        response: { 200: internalSessionSchema, ...errorResponses(E.overload, E.validation, E.rateLimit, 'INVALID_API_KEY', 'SESSION_NOT_FOUND') },
      },
    },
    async (request) => {
      const { merchantBizId } = request.params;
      const s = await app.sessions.findByMerchantBizId(merchantBizId);
      if (!s) throw new HttpError(404, 'SESSION_NOT_FOUND', 'No such verification');
      let details = null;
      if (s.detailsCiphertext && s.detailsKeyId) {
        const plain = JSON.parse(
          app.results.cipher.open({ keyId: s.detailsKeyId, ciphertext: Buffer.from(s.detailsCiphertext) }, merchantBizId),
        ) as Record<string, unknown>;
        details = {
          extBasicInfo: parseExt(plain.extBasicInfo),
          extIdInfo: parseExt(plain.extIdInfo),
          extFaceInfo: parseExt(plain.extFaceInfo),
          extRiskInfo: parseExt(plain.extRiskInfo),
        };
      }
      return {
        merchantBizId: s.merchantBizId,
        status: publicStatus(s),
        transactionId: s.transactionId,
        passed: s.passed,
        subCode: s.subCode,
        callbackPassed: s.callbackPassed,
        callbackSubCode: s.callbackSubCode,
        errorCode: s.errorCode,
        expiresAt: s.expiresAt.toISOString(),
        checkedAt: s.checkedAt?.toISOString() ?? null,
        detailsPurgedAt: s.detailsPurgedAt?.toISOString() ?? null,
        details,
      };
    },
  );
};

export default internalRoutes;
