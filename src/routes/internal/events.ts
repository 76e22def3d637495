import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { ERROR_GROUPS as E } from '../../errors/codes.js';
import { errorResponses } from '../../errors/schema.js';
import { HttpError } from '../../errors/http-error.js';
import { BULK_REDELIVERY_LIMIT, webhookNotConfigured } from '../../events/plugin.js';
import { EVENT_STATES, type DeliveryRow, type EventRow } from '../../events/repository.js';
import { cursorSchema, deliverySchema, encodeCursor, eventDataSchema, eventSchema, iso, limitSchema, sinceSchema } from './schemas.js';

const eventIdParams = z.object({ id: z.string().regex(/^evt_[0-9a-f]{32}$/, 'id must be an event id (evt_ and 32 hex digits)') });
const eventCursor = z.object({ createdAt: z.iso.datetime(), id: z.string().max(36) });

const toDelivery = (d: DeliveryRow): z.output<typeof deliverySchema> => ({
  at: d.at.toISOString(),
  trigger: d.trigger,
  httpStatus: d.httpStatus,
  error: d.error,
  latencyMs: d.latencyMs,
});

const toEvent = (e: EventRow, deliveries: DeliveryRow[]): z.output<typeof eventSchema> => ({
  id: e.id,
  type: e.type,
  sessionId: e.sessionId,
  sequence: e.sequence,
  createdAt: e.createdAt.toISOString(),
  state: e.state,
  attempts: e.attempts,
  lastAttemptAt: iso(e.lastAttemptAt),
  deliveredAt: iso(e.deliveredAt),
  data: eventDataSchema.parse(e.data),
  deliveries: deliveries.filter((d) => d.eventId === e.id).map(toDelivery),
});

/** Merchant events: what was recorded, each delivery attempt, and redelivery. Each request is in the audit trail. */
const eventRoutes: FastifyPluginAsyncZod = async (app) => {
  const { events } = app;

  app.get(
    '/kyc/events',
    {
      schema: {
        summary: 'Back office: merchant events, newest first, with every delivery attempt',
        description:
          'Filter by state (pending: will be tried again; delivered; failed: gave up after MERCHANT_WEBHOOK_MAX_ATTEMPTS), by ' +
          'since (recorded at or after) and by sessionId. Pages: pass the answer\'s nextCursor as cursor (null: the last page).',
        tags: ['internal'],
        security: [{ apiKey: [] }],
        querystring: z.object({
          state: z.enum(EVENT_STATES).optional(),
          since: sinceSchema.optional(),
          sessionId: z.uuid().optional(),
          limit: limitSchema,
          cursor: cursorSchema(eventCursor).optional(),
        }),
        response: {
          200: z.object({ events: z.array(eventSchema), nextCursor: z.string().nullable() }).describe('BackOfficeEventList'),
          ...errorResponses(E.overload, E.validation, E.rateLimit, 'INVALID_API_KEY'),
        },
      },
    },
    async (request) => {
      const { state, since, sessionId, limit, cursor } = request.query;
      const before = cursor ? { createdAt: new Date(cursor.createdAt), id: cursor.id } : undefined;
      const rows = await events.repository.list({ state, since, sessionId, before }, limit + 1);
      const page = rows.slice(0, limit);
      const last = page.at(-1);
      const deliveries = await events.repository.deliveriesOf(page.map((e) => e.id));
      await app.audit.record(request, 'events.list', 'events', { state: state ?? null, since: iso(since ?? null), sessionId: sessionId ?? null, count: page.length });
      return {
        events: page.map((e) => toEvent(e, deliveries)),
        nextCursor: rows.length > limit && last ? encodeCursor({ createdAt: last.createdAt.toISOString(), id: last.id }) : null,
      };
    },
  );

  app.post(
    '/kyc/events/:id/redeliver',
    {
      schema: {
        summary: 'Back office: send one event again now (the same id and sequence), whatever its state',
        description: 'Answers once the receiver has answered (within 5 s): the attempt is recorded; a 2xx makes the event delivered.',
        tags: ['internal'],
        security: [{ apiKey: [] }],
        params: eventIdParams,
        response: {
          200: z
            .object({
              event: eventSchema,
              delivery: z.object({ ok: z.boolean(), httpStatus: z.number().int().nullable(), error: z.string().nullable(), latencyMs: z.number().int() }),
            })
            .describe('Redelivered'),
          ...errorResponses(E.overload, E.validation, E.rateLimit, 'INVALID_API_KEY', 'EVENT_NOT_FOUND', 'WEBHOOK_NOT_CONFIGURED'),
        },
      },
    },
    async (request) => {
      if (!events.sending) throw webhookNotConfigured();
      const { id } = request.params;
      const event = await events.repository.find(id);
      if (!event) throw new HttpError(404, 'EVENT_NOT_FOUND', 'No such event');
      await app.audit.record(request, 'event.redeliver', `event:${id}`);
      const result = await events.redeliver(event);
      return { event: toEvent(result.event, await events.repository.deliveriesOf([id])), delivery: result.delivery };
    },
  );

  app.post(
    '/kyc/events/redeliver',
    {
      schema: {
        summary: 'Back office: send again, paced, every event in a state since a time (e.g. the failed ones after an outage)',
        description:
          `Queues up to ${BULK_REDELIVERY_LIMIT} events, oldest first, each sent once (a failure is recorded and leaves its state), ` +
          'paced at MERCHANT_WEBHOOK_REDELIVERY_PER_S across all bulk requests: each is due one interval after the previous ' +
          'one already queued. When more matched, ask again with since = nextSince.',
        tags: ['internal'],
        security: [{ apiKey: [] }],
        body: z.object({ state: z.enum(EVENT_STATES).default('failed'), since: sinceSchema }),
        response: {
          202: z
            .object({
              queued: z.number().int().describe('Events queued now (one already waiting for its redelivery is not queued twice).'),
              ratePerSecond: z.number(),
              lastDueAt: z.iso.datetime().nullable().describe('When the last of them is due.'),
              more: z.boolean(),
              nextSince: z.iso.datetime().nullable(),
            })
            .describe('RedeliveryQueued'),
          ...errorResponses(E.overload, E.validation, E.body, E.rateLimit, 'INVALID_API_KEY', 'WEBHOOK_NOT_CONFIGURED'),
        },
      },
    },
    async (request, reply) => {
      if (!events.sending) throw webhookNotConfigured();
      const { state, since } = request.body;
      await app.audit.record(request, 'events.redeliver', 'events', { state, since: since.toISOString() });
      const queued = await events.redeliverAll(state, since);
      return reply.code(202).send({ ...queued, ratePerSecond: app.config.MERCHANT_WEBHOOK_REDELIVERY_PER_S });
    },
  );
};

export default eventRoutes;
