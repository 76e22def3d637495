import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { AUDIT_ACTIONS } from '../../audit/repository.js';
import { ERROR_GROUPS as E } from '../../errors/codes.js';
import { errorResponses } from '../../errors/schema.js';
import { cursorSchema, encodeCursor, limitSchema, sinceSchema } from './schemas.js';

const auditEntrySchema = z
  .object({
    id: z.string(),
    at: z.iso.datetime(),
    actor: z.string().describe("The API key's name (INTERNAL_API_KEYS; INTERNAL_API_KEY is `default`), or `retention`."),
    address: z.string().nullable().describe("The caller's address; null for the service's own actions."),
    action: z.enum(AUDIT_ACTIONS),
    target: z.string().describe('session:<id>, event:<id>, merchantBizId:<id>, user (a person: never named), events, audit.'),
    detail: z.record(z.string(), z.unknown()).nullable(),
  })
  .describe('AuditEntry');

/** The audit trail, itself read under audit. */
const auditRoutes: FastifyPluginAsyncZod = async (app) => {
  app.get(
    '/audit',
    {
      schema: {
        summary: 'Back office: who did what (reads of personal data, erasures, redeliveries, listings), newest first',
        description: "Filter by target, actor (a key's name), action and since. Pages: pass the answer's nextCursor as cursor.",
        tags: ['internal'],
        security: [{ apiKey: [] }],
        querystring: z.object({
          target: z.string().min(1).max(200).optional(),
          actor: z.string().min(1).max(64).optional(),
          action: z.enum(AUDIT_ACTIONS).optional(),
          since: sinceSchema.optional(),
          limit: limitSchema,
          cursor: cursorSchema(z.object({ id: z.string().regex(/^[0-9]{1,19}$/) })).optional(),
        }),
        response: {
          200: z.object({ entries: z.array(auditEntrySchema), nextCursor: z.string().nullable() }).describe('AuditList'),
          ...errorResponses(E.overload, E.validation, E.rateLimit, 'INVALID_API_KEY'),
        },
      },
    },
    async (request) => {
      const { target, actor, action, since, limit, cursor } = request.query;
      const rows = await app.audit.repository.list({ target, actor, action, since, beforeId: cursor?.id }, limit + 1);
      const page = rows.slice(0, limit);
      await app.audit.record(request, 'audit.list', 'audit', { target: target ?? null, actor: actor ?? null, action: action ?? null, count: page.length });
      return {
        entries: page.map((r) => ({ ...r, at: r.at.toISOString() })),
        nextCursor: rows.length > limit && page.length > 0 ? encodeCursor({ id: page.at(-1)!.id }) : null,
      };
    },
  );
};

export default auditRoutes;
