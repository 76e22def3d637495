import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { ERROR_GROUPS as E } from '../../errors/codes.js';
import { errorResponses } from '../../errors/schema.js';
import { DETAIL_FIELDS, readDetails } from '../../results/details.js';
import type { SessionWithTransactions } from '../../sessions/repository.js';
import { notFound } from '../../sessions/start.js';
import { publicStatus } from '../../sessions/status.js';
import { userIdOf } from '../../sessions/user-id.js';
import { merchantBizIdSchema } from '../kyc/schemas.js';
import { iso, sessionSchema } from './schemas.js';

/** Sessions one listing answers with at most (one per caller that used the merchantBizId). */
const LIST_LIMIT = 100;

const detailsSchema = z
  .object(Object.fromEntries(DETAIL_FIELDS.map((field) => [field, z.unknown()])))
  .nullable()
  .describe("CheckResult's personal data (decrypted), or null when not stored, purged or erased.");

const sessionWithDetailsSchema = sessionSchema.extend({ details: detailsSchema }).describe('BackOfficeSession');

export const sessionIdParams = z.object({ id: z.uuid('id must be a session id (a UUID; list sessions by merchantBizId with ?merchantBizId=)') });

/** The back office's view of a session (the person opened from its sealed form). */
export function sessionSummary(sealer: Parameters<typeof userIdOf>[0], s: SessionWithTransactions): z.output<typeof sessionSchema> {
  return {
    id: s.id,
    merchantBizId: s.merchantBizId,
    userId: userIdOf(sealer, s),
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
    erasure: s.erasureRequestedAt
      ? { requestedAt: s.erasureRequestedAt.toISOString(), redactedAt: iso(s.redactedAt), completedAt: iso(s.erasureCompletedAt) }
      : null,
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
      upstreamDeletion: t.upstreamDeletion
        ? { state: t.upstreamDeletion, attempts: t.upstreamDeletionAttempts, lastError: t.upstreamDeletionError, at: iso(t.upstreamDeletionAt) }
        : null,
    })),
  };
}

/** Sessions with the person they belong to, and decrypted details: each read is in the audit trail. */
const sessionRoutes: FastifyPluginAsyncZod = async (app) => {
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
    async (request) => {
      const { merchantBizId } = request.query;
      const sessions = await app.sessions.listByMerchantBizId(merchantBizId, LIST_LIMIT);
      await app.audit.record(request, 'sessions.list', `merchantBizId:${merchantBizId}`, { sessions: sessions.length });
      return { sessions: sessions.map((s) => sessionSummary(app.sealer, s)) };
    },
  );

  app.get(
    '/kyc/sessions/:id',
    {
      schema: {
        summary: 'Back office: one session, with the person it belongs to, its transactions, its decrypted result details and its erasure',
        tags: ['internal'],
        security: [{ apiKey: [] }],
        params: sessionIdParams,
        response: { 200: sessionWithDetailsSchema, ...errorResponses(E.overload, E.validation, E.rateLimit, 'INVALID_API_KEY', 'SESSION_NOT_FOUND') },
      },
    },
    async (request) => {
      const s = await app.sessions.findByIdWithTransactions(request.params.id);
      if (!s) throw notFound();
      await app.audit.record(request, 'session.read', `session:${s.id}`, { details: s.detailsCiphertext !== null });
      let details = null;
      if (s.detailsCiphertext && s.detailsKeyId) {
        details = readDetails(app.sealer.open({ keyId: s.detailsKeyId, ciphertext: Buffer.from(s.detailsCiphertext) }, s.id));
      }
      return { ...sessionSummary(app.sealer, s), details };
    },
  );
};

export default sessionRoutes;
