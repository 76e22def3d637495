import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { ERROR_GROUPS as E } from '../../errors/codes.js';
import { errorResponses } from '../../errors/schema.js';
import type { ErasureRequested } from '../../erasure/repository.js';
import { notFound } from '../../sessions/start.js';
import { erasureAcceptedSchema, iso } from './schemas.js';
import { sessionIdParams } from './sessions.js';

const ERASURE_DESCRIPTION =
  'Answered 202 at once; a durable job then removes the personal data here (the user id, its keyed hash, the result ' +
  "details, the callback token hashes, TransactionUrl and Protocol) and asks Alibaba's DeleteVerifyResult (DeleteType=All) " +
  'for every transaction, retried with backoff, then records kyc.session.redacted. A tombstone stays (ids, merchantBizId, ' +
  'status, outcome, timestamps). A session without an outcome ends `expired` first, so a late callback cannot revive it. ' +
  'Idempotent: asking again changes nothing, except that deletions Alibaba kept failing are asked again. Progress: ' +
  'GET /internal/kyc/sessions/{id}.';

/** Erasure: GDPR, PDPO and PDPA requests. Each request is in the audit trail. */
const erasureRoutes: FastifyPluginAsyncZod = async (app) => {
  const accepted = (requested: ErasureRequested[]) => ({
    sessions: requested.map((r) => ({
      id: r.id,
      merchantBizId: r.merchantBizId,
      erasure: { requestedAt: r.requestedAt.toISOString(), redactedAt: iso(r.redactedAt), completedAt: iso(r.completedAt) },
    })),
  });

  app.delete(
    '/kyc/sessions/:id',
    {
      schema: {
        summary: 'Back office: erase one session (a tombstone stays)',
        description: ERASURE_DESCRIPTION,
        tags: ['internal'],
        security: [{ apiKey: [] }],
        params: sessionIdParams,
        response: { 202: erasureAcceptedSchema, ...errorResponses(E.overload, E.validation, E.rateLimit, 'INVALID_API_KEY', 'SESSION_NOT_FOUND') },
      },
    },
    async (request, reply) => {
      const { id } = request.params;
      if (!(await app.sessions.findById(id))) throw notFound();
      await app.audit.record(request, 'session.erase', `session:${id}`);
      return reply.code(202).send(accepted(await app.erasure.requestSessions([id])));
    },
  );

  app.delete(
    '/kyc/users/:userId',
    {
      schema: {
        summary: "Back office: erase every session of a person (a data subject's request)",
        description:
          'userId is the JWT `sub` as your identity provider issued it (URL-encoded); its sessions are found by its keyed hash, ' +
          'and its record of starts (the day cap) is forgotten. The answer lists the sessions found (none: nothing was kept). ' +
          ERASURE_DESCRIPTION,
        tags: ['internal'],
        security: [{ apiKey: [] }],
        params: z.object({ userId: z.string().min(1).max(1024) }),
        response: { 202: erasureAcceptedSchema, ...errorResponses(E.overload, E.validation, E.rateLimit, 'INVALID_API_KEY') },
      },
    },
    async (request, reply) => {
      const requested = await app.erasure.requestUser(request.params.userId, async (sessionIds) => {
        // The person is not named in the trail (that would keep what is being erased): their sessions are.
        await app.audit.recordAll(request, [
          { action: 'user.erase', target: 'user', detail: { sessions: sessionIds } },
          ...sessionIds.map((id) => ({ action: 'session.erase' as const, target: `session:${id}`, detail: { via: 'user.erase' } })),
        ]);
      });
      return reply.code(202).send(accepted(requested));
    },
  );
};

export default erasureRoutes;
