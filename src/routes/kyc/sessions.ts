import { performance } from 'node:perf_hooks';
import fastJson from 'fast-json-stringify';
import { serializerCompiler, type FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { ERROR_GROUPS as E } from '../../errors/codes.js';
import { errorResponses } from '../../errors/schema.js';
import { staticSecurityHeaders } from '../../errors/security-headers.js';
import { notFound, resumeSession } from '../../sessions/start.js';
import type { SessionStatusRow, StatusSource } from '../../sessions/repository.js';
import { publicStatus } from '../../sessions/status.js';
import { sessionParamsSchema, sessionQuerySchema, sessionResponseSchema, startBodySchema, startResponseSchema } from './schemas.js';
import { onCallerGone } from './caller-gone.js';
import { startDeps } from './start-deps.js';

/**
 * The 200 answer, serialized by fast-json-stringify (Fastify's own serializer) compiled once from the
 * response's zod schema: the zod serializer validates and copies every answer (~3 µs and its
 * garbage, a twentieth of a read), while this one is built right here from typed columns (`view`).
 * Error answers keep the zod serializer, which refuses a code the route does not document.
 */
const serializeStatus = fastJson(z.toJSONSchema(sessionResponseSchema, { target: 'draft-7', io: 'output' }) as Parameters<typeof fastJson>[0]);

const SECURITY_HEADERS = Object.fromEntries(
  staticSecurityHeaders().flatMap((value, i, list) => (i % 2 === 0 ? [[value, list[i + 1]!]] : [])),
);

const sessionsRoute: FastifyPluginAsyncZod = async (app) => {
  const { sessions, sessionChanges: changes } = app;
  const maxAttempts = app.config.KYC_MAX_TRANSACTIONS_PER_SESSION;
  const reads = {
    cache: app.metrics.statusReads.labels('cache'),
    shared: app.metrics.statusReads.labels('shared'),
    database: app.metrics.statusReads.labels('database'),
  };
  const countRead = (source: StatusSource) => reads[source].inc();

  /** The answer: the session as its caller sees it now. */
  const view = (session: SessionStatusRow) => ({
    merchantBizId: session.merchantBizId,
    status: publicStatus(session),
    transactionId: session.transactionId,
    expiresAt: session.expiresAt.toISOString(),
    ...(session.passed === 'Y' || session.passed === 'N' ? { passed: session.passed as 'Y' | 'N' } : {}),
    ...(session.subCode ? { subCode: session.subCode } : {}),
    attempts: session.attempts,
    maxAttempts,
    updatedAt: session.updatedAt.toISOString(),
  });

  app.get(
    '/sessions/:merchantBizId',
    {
      // The security headers of every response, as helmet sets them (taken from helmet once, at
      // start: errors/security-headers.ts), in one call: @fastify/helmet makes its middleware anew
      // for every request (~4 % of a status read's allocations). onSend: every answer has them.
      helmet: false,
      onSend: (_request, reply, payload, done) => {
        reply.headers(SECURITY_HEADERS);
        done(null, payload);
      },
      // serializeStatus for 200. Fastify passes each status code's schema as `route.schema` (its
      // type names the route's whole schema).
      serializerCompiler: (route) =>
        String(route.httpStatus) === '200' ? serializeStatus : serializerCompiler(route as unknown as Parameters<typeof serializerCompiler>[0]),
      preHandler: [app.authenticate, app.limits.statusByUser],
      schema: {
        summary: "Status of one of the caller's verifications",
        description:
          'A plain read answers at once. A long poll (`wait` and `status`: the status the caller already has) answers at once ' +
          'when the status differs from `status`, otherwise as soon as it changes (a change made through any instance), or after ' +
          '`wait` seconds with the status unchanged (200). A frontend asks again with the status it got, so each change reaches it ' +
          'within milliseconds, with one request per change or per `wait` seconds. Each request counts once against ' +
          'RATE_LIMIT_STATUS_PER_USER, however long it waits.',
        tags: ['kyc'],
        security: [{ bearerAuth: [] }],
        params: sessionParamsSchema,
        querystring: sessionQuerySchema,
        response: { 200: sessionResponseSchema, ...errorResponses(E.overload, E.validation, E.auth, E.rateLimit, 'SESSION_NOT_FOUND') },
      },
    },
    async (request, reply) => {
      // Looked up within the caller's own sessions: someone else's is indistinguishable from none.
      const { ref } = request.user!;
      const { merchantBizId } = request.params;
      const read = (fresh: boolean) => sessions.statusOf(ref, merchantBizId, { fresh, onSource: countRead });
      const version = changes.version;
      let session = await read(false);
      if (!session) throw notFound();
      const { wait = 0, status: known } = request.query;
      if (known === undefined || wait === 0 || publicStatus(session) !== known) return view(session);

      // The long poll. From here no change of the session goes unnoticed (the watch), and no query
      // runs while it waits: one read after each wake-up, and one at the end.
      const deadline = performance.now() + wait * 1000;
      const watch = changes.watch(session.id);
      onCallerGone(reply, () => watch.stop());
      try {
        // A change learnt of while the first read ran may be one it missed.
        if (changes.changedSince(session.id, version)) session = await read(true);
        // Answer after the next read: the wait ended (its time is up) or the service is closing.
        let last = false;
        for (;;) {
          if (!session) throw notFound();
          const now = Date.now();
          const current = publicStatus(session, new Date(now));
          const remaining = deadline - performance.now();
          if (current !== known || remaining <= 0 || last) return view(session);
          // A pending session turns expired at its expiry, with no write to wake anyone: wake then.
          const untilExpiry = current === 'pending' ? session.expiresAt.getTime() - now + 1 : Number.POSITIVE_INFINITY;
          const reason = await watch.wait(Math.min(remaining, untilExpiry));
          // Nobody to answer: no read.
          if (reason === 'aborted') return view(session);
          last = reason === 'closing' || (reason === 'timeout' && remaining <= untilExpiry);
          session = await read(true);
        }
      } finally {
        watch.stop();
      }
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
