import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { ERROR_GROUPS as E } from '../../errors/codes.js';
import { errorResponses } from '../../errors/schema.js';
import { DETAIL_FIELDS, readDetails } from '../../results/details.js';
import type { SessionWithTransactions } from '../../sessions/repository.js';
import { notFound } from '../../sessions/start.js';
import { publicStatus, PUBLIC_STATUSES } from '../../sessions/status.js';
import { userIdOf } from '../../sessions/user-id.js';
import { merchantBizIdSchema } from '../kyc/schemas.js';

const iso = (d: Date | null) => d?.toISOString() ?? null;
/** Sessions one listing answers with at most (one per caller that used the merchantBizId). */
const LIST_LIMIT = 100;

const detailsSchema = z
  .object(Object.fromEntries(DETAIL_FIELDS.map((field) => [field, z.unknown()])))
  .nullable()
  .describe("CheckResult's personal data (decrypted), or null when not stored or purged.");

const transactionSchema = z
  .object({
    attempt: z.number().int().describe('1 for the start, then one more per resume.'),
    transactionId: z.string().nullable(),
    createdAt: z.iso.datetime(),
    expiresAt: z.iso.datetime(),
    errorCode: z.string().nullable().describe('Why its Initialize failed, when it did.'),
    callbackPassed: z.string().nullable(),
    callbackSubCode: z.string().nullable(),
    callbackAt: z.iso.datetime().nullable(),
    passed: z.string().nullable().describe("CheckResult's verdict for this transaction."),
    subCode: z.string().nullable(),
    checkedAt: z.iso.datetime().nullable(),
  })
  .describe('BackOfficeTransaction');

const sessionSchema = z
  .object({
    id: z.uuid().describe("The session's own id (in its CallbackUrls, jobs and events)."),
    merchantBizId: z.string(),
    userId: z.string().nullable().describe("The person: the caller's JWT `sub` as your identity provider issued it (null for sessions from before it was kept)."),
    status: z.enum(PUBLIC_STATUSES),
    transactionId: z.string().nullable().describe('The newest transaction.'),
    decidedTransactionId: z.string().nullable().describe('The transaction whose CheckResult decided the session.'),
    passed: z.string().nullable(),
    subCode: z.string().nullable(),
    errorCode: z.string().nullable(),
    createdAt: z.iso.datetime(),
    expiresAt: z.iso.datetime(),
    checkedAt: z.iso.datetime().nullable(),
    detailsPurgedAt: z.iso.datetime().nullable(),
    transactions: z.array(transactionSchema),
  })
  .describe('BackOfficeSessionSummary');

const sessionWithDetailsSchema = sessionSchema.extend({ details: detailsSchema }).describe('BackOfficeSession');

/** The merchant's back office: sessions with the person they belong to, and decrypted details. API key in `x-api-key`. */
const internalRoutes: FastifyPluginAsyncZod = async (app) => {
  app.addHook('onRequest', app.limits.internalByIp);
  app.addHook('onRequest', app.authenticateApiKey);

  const summary = (s: SessionWithTransactions): z.output<typeof sessionSchema> => ({
    id: s.id,
    merchantBizId: s.merchantBizId,
    userId: userIdOf(app.sealer, s),
    status: publicStatus(s),
    transactionId: s.transactionId,
    decidedTransactionId: s.decidedTransactionId,
    passed: s.passed,
    subCode: s.subCode,
    errorCode: s.errorCode,
    createdAt: s.createdAt.toISOString(),
    expiresAt: s.expiresAt.toISOString(),
    checkedAt: iso(s.checkedAt),
    detailsPurgedAt: iso(s.detailsPurgedAt),
    transactions: s.transactions.map((t) => ({
      attempt: t.seq,
      transactionId: t.transactionId,
      createdAt: t.createdAt.toISOString(),
      expiresAt: t.expiresAt.toISOString(),
      errorCode: t.errorCode,
      callbackPassed: t.callbackPassed,
      callbackSubCode: t.callbackSubCode,
      callbackAt: iso(t.callbackAt),
      passed: t.passed,
      subCode: t.subCode,
      checkedAt: iso(t.checkedAt),
    })),
  });

  app.get(
    '/kyc/sessions',
    {
      schema: {
        summary: 'Back office: every session with a merchantBizId (one per user who used it), with the person each belongs to',
        tags: ['internal'],
        security: [{ apiKey: [] }],
        querystring: z.object({ merchantBizId: merchantBizIdSchema }),
        response: {
          200: z.object({ sessions: z.array(sessionSchema) }).describe('BackOfficeSessionList'),
          ...errorResponses(E.overload, E.validation, E.rateLimit, 'INVALID_API_KEY'),
        },
      },
    },
    async (request) => ({ sessions: (await app.sessions.listByMerchantBizId(request.query.merchantBizId, LIST_LIMIT)).map(summary) }),
  );

  app.get(
    '/kyc/sessions/:id',
    {
      schema: {
        summary: 'Back office: one session, with the person it belongs to, its transactions and its decrypted result details',
        tags: ['internal'],
        security: [{ apiKey: [] }],
        params: z.object({ id: z.uuid('id must be a session id (a UUID; list sessions by merchantBizId with ?merchantBizId=)') }),
        response: { 200: sessionWithDetailsSchema, ...errorResponses(E.overload, E.validation, E.rateLimit, 'INVALID_API_KEY', 'SESSION_NOT_FOUND') },
      },
    },
    async (request) => {
      const s = await app.sessions.findByIdWithTransactions(request.params.id);
      if (!s) throw notFound();
      let details = null;
      if (s.detailsCiphertext && s.detailsKeyId) {
        details = readDetails(app.sealer.open({ keyId: s.detailsKeyId, ciphertext: Buffer.from(s.detailsCiphertext) }, s.id));
      }
      return { ...summary(s), details };
    },
  );
};

export default internalRoutes;
