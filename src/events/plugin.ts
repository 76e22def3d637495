import fp from 'fastify-plugin';
import type { Config } from '../config/schema.js';
import { HttpError } from '../errors/http-error.js';
import { SWEEP_TIMEOUT_S } from '../jobs/plugin.js';
import { userIdOf } from '../sessions/user-id.js';
import { envelope } from './envelope.js';
import { EventRepository, type DeliveryTrigger, type EventRow, type EventState } from './repository.js';
import { postEvent, WEBHOOK_TIMEOUT_MS, webhookSecrets, type DeliveryResult } from './webhook.js';

export const EVENT_QUEUES = {
  /** One job per event (keyed by its id): automatic delivery, retried with backoff. */
  deliver: 'kyc_notify',
  /** Bulk redeliveries, paced (MERCHANT_WEBHOOK_REDELIVERY_PER_S). */
  redeliver: 'kyc_redeliver',
  /** Queues the delivery of pending events whose job was lost (a crash between the change and the queue). */
  sweep: 'kyc_events_sweep',
} as const;

/** What a redelivery answers without MERCHANT_WEBHOOK_URL. */
export const webhookNotConfigured = () =>
  new HttpError(409, 'WEBHOOK_NOT_CONFIGURED', 'MERCHANT_WEBHOOK_URL is not set: events are recorded, not sent');

/** At most this many events per bulk redelivery request (the answer says when more matched). */
export const BULK_REDELIVERY_LIMIT = 1000;
/** Workers sending paced redeliveries per process: the bursts a receiver sees stay this small. */
const REDELIVERY_WORKERS = 2;
/** Pending events younger than this are left to the job their change queued. */
const SWEEP_GRACE_MS = 10_000;
const SWEEP_BATCH = 500;
/** Slack of a delivery job over the longest a live one can take (see deliveryJobTimeoutS). */
const DELIVERY_JOB_MARGIN_S = 60;

/**
 * Past this a delivery job counts as dead (its process was killed mid-delivery) and is retried,
 * instead of after pg-boss's default 15 minutes. A live job runs three queries (each within
 * DATABASE_TIMEOUT_MS) and one delivery (within WEBHOOK_TIMEOUT_MS); the margin covers a busy event
 * loop. One that still overran would only be delivered twice, with the same event id.
 */
export const deliveryJobTimeoutS = (config: Pick<Config, 'DATABASE_TIMEOUT_MS'>): number =>
  Math.ceil((WEBHOOK_TIMEOUT_MS + 3 * config.DATABASE_TIMEOUT_MS) / 1000) + DELIVERY_JOB_MARGIN_S;

export interface BulkRedelivery {
  /** Events queued for redelivery now (those with one queued already are not queued twice). */
  queued: number;
  /** More events matched than one request takes: ask again with `since` = nextSince. */
  more: boolean;
  nextSince: string | null;
  /** When the last of them is due (paced at MERCHANT_WEBHOOK_REDELIVERY_PER_S). */
  lastDueAt: string | null;
}

declare module 'fastify' {
  interface FastifyInstance {
    /** Merchant events: recorded by the database (the outbox), delivered and redelivered from here. */
    events: {
      repository: EventRepository;
      /** Whether events are sent at all (MERCHANT_WEBHOOK_URL). */
      sending: boolean;
      /** Queues the delivery of a session's pending events: call it after the change that recorded them. */
      dispatch(sessionId: string): Promise<void>;
      /**
       * Queues the delivery of pending events without a job (also run on RECONCILE_CRON), those
       * recorded more than `graceMs` ago (default 10 s: younger ones have the job their change
       * queued); returns how many.
       */
      sweep(graceMs?: number): Promise<number>;
      /**
       * Sends one event now, whatever its state, and records the attempt; answers the event after it.
       * Throws WEBHOOK_NOT_CONFIGURED (409) without MERCHANT_WEBHOOK_URL (as redeliverAll).
       */
      redeliver(event: EventRow): Promise<{ event: EventRow; delivery: DeliveryResult }>;
      /** Queues the redelivery of the events in `state` since `since`, paced. */
      redeliverAll(state: EventState, since: Date): Promise<BulkRedelivery>;
    };
  }
}

/** A delivery job: one event. Jobs queued by earlier versions name a session (its final state). */
interface DeliveryJob {
  eventId?: string;
  sessionId?: string;
  merchantBizId?: string;
}

/**
 * Merchant events. The database records them (the trigger kyc_session_event writes the outbox row
 * in the statement that makes the change), so none is lost or invented by a crash; this plugin
 * delivers them: a stately job per event, retried with backoff until MERCHANT_WEBHOOK_MAX_ATTEMPTS,
 * every attempt recorded; and the back office's redeliveries.
 */
export default fp(
  async (app) => {
    const { config, jobs, sessions } = app;
    const repository = new EventRepository(app.pgPool);
    const url = config.MERCHANT_WEBHOOK_URL;
    const secrets = webhookSecrets(config);
    const sending = url !== undefined && secrets.length > 0;
    const retry = { retryDelay: config.CHECK_RESULT_RETRY_DELAY_S, retryBackoff: true };

    await app.ensureQueue({
      name: EVENT_QUEUES.deliver,
      policy: 'stately',
      retryLimit: config.MERCHANT_WEBHOOK_MAX_ATTEMPTS - 1,
      expireInSeconds: deliveryJobTimeoutS(config),
      ...retry,
    });
    await app.ensureQueue({ name: EVENT_QUEUES.redeliver, policy: 'standard', retryLimit: 0, expireInSeconds: deliveryJobTimeoutS(config) });
    await app.ensureQueue({ name: EVENT_QUEUES.sweep, policy: 'singleton', expireInSeconds: SWEEP_TIMEOUT_S });

    const queue = (eventId: string) => app.sendOnce(EVENT_QUEUES.deliver, eventId, { eventId } satisfies DeliveryJob);

    /** Never throws: the change is recorded already, and the events sweep queues what this could not. */
    const dispatch = async (sessionId: string) => {
      if (!sending) return;
      try {
        for (const id of await repository.pendingOf(sessionId)) await queue(id);
      } catch (err) {
        app.log.warn({ sessionId, err: { message: (err as Error).message } }, 'could not queue the session\'s events: the events sweep will');
      }
    };

    const sweep = async (graceMs = SWEEP_GRACE_MS) => {
      if (!sending) return 0;
      let queued = 0;
      for (const id of await repository.pending(new Date(Date.now() - graceMs), SWEEP_BATCH)) if (await queue(id)) queued++;
      if (queued > 0) app.log.info({ queued }, 'events sweep: queued deliveries whose job was lost');
      return queued;
    };

    /** One attempt: the event as sent now (the person read from the session), its result recorded. */
    const attempt = async (event: EventRow, trigger: DeliveryTrigger) => {
      let userId: string | null = null;
      if (event.type !== 'kyc.session.redacted') {
        const session = await sessions.findById(event.sessionId);
        userId = session ? userIdOf(app.sealer, session) : null;
      }
      const delivery = await postEvent(url!, secrets, event.id, JSON.stringify(envelope(event, userId)));
      const after = await repository.recordDelivery(event.id, trigger, delivery, config.MERCHANT_WEBHOOK_MAX_ATTEMPTS);
      return { delivery, after: after ?? event };
    };

    const redeliver = async (event: EventRow) => {
      if (!sending) throw webhookNotConfigured();
      const { delivery, after } = await attempt(event, 'redeliver');
      app.metrics.eventDelivery('redeliver', delivery.ok ? 'delivered' : 'failed');
      app.log.info({ eventId: event.id, sessionId: event.sessionId, httpStatus: delivery.httpStatus, error: delivery.error }, 'merchant event redelivered');
      return { event: after, delivery };
    };

    /**
     * Paced: the i-th event is due 1/MERCHANT_WEBHOOK_REDELIVERY_PER_S seconds after the one before,
     * starting after the last redelivery already queued (a lock orders concurrent requests), so the
     * receiver gets that rate on average however many bulk requests come; two workers per process
     * send what is due.
     */
    const redeliverAll = async (state: EventState, since: Date): Promise<BulkRedelivery> => {
      if (!sending) throw webhookNotConfigured();
      const matched = await repository.forRedelivery(state, since, BULK_REDELIVERY_LIMIT + 1);
      const batch = matched.slice(0, BULK_REDELIVERY_LIMIT);
      const more = matched.length > BULK_REDELIVERY_LIMIT;
      const nextSince = more ? matched[BULK_REDELIVERY_LIMIT]!.createdAt.toISOString() : null;
      if (batch.length === 0) return { queued: 0, more, nextSince, lastDueAt: null };
      const intervalMs = 1000 / config.MERCHANT_WEBHOOK_REDELIVERY_PER_S;
      const schedule = await app.jobsTransaction(async (db) => {
        await db.executeSql('SELECT pg_advisory_xact_lock(hashtext($1))', [EVENT_QUEUES.redeliver]);
        const { rows } = await db.executeSql(
          `SELECT max(start_after) AS last, array_agg(singleton_key) AS keys FROM ${config.JOBS_SCHEMA}.job WHERE name = $1 AND state = 'created'`,
          [EVENT_QUEUES.redeliver],
        );
        const { last, keys } = (rows[0] ?? {}) as { last: Date | null; keys: string[] | null };
        const waiting = new Set(keys ?? []);
        const todo = batch.filter((e) => !waiting.has(e.id));
        const first = Math.max(Date.now(), last ? last.getTime() + intervalMs : 0);
        const due = todo.map((_, i) => new Date(first + i * intervalMs));
        if (todo.length > 0) {
          await jobs.insert(
            todo.map((e, i) => ({ name: EVENT_QUEUES.redeliver, data: { eventId: e.id }, singletonKey: e.id, startAfter: due[i]! })),
            { db },
          );
        }
        return { queued: todo.length, lastDueAt: due.at(-1)?.toISOString() ?? null };
      });
      app.log.info({ state, queued: schedule.queued, more }, 'merchant events queued for redelivery');
      return { ...schedule, more, nextSince };
    };

    app.decorate('events', { repository, sending, dispatch, sweep, redeliver, redeliverAll });

    if (!config.JOBS_WORKERS) return;
    /** A job from before the outbox names a session: record the event of its final state, then deliver it as any other. */
    const deliverQueuedBeforeOutbox = async (job: DeliveryJob) => {
      const sessionId = job.sessionId ?? (job.merchantBizId ? await sessions.onlySessionWith(job.merchantBizId) : undefined);
      if (!sessionId) return;
      await repository.recordBeforeOutbox(sessionId);
      await dispatch(sessionId);
    };

    await app.workOn<DeliveryJob>(EVENT_QUEUES.deliver, config.JOBS_CONCURRENCY, async ([job]) => {
      if (!job || !sending) return;
      if (!job.data.eventId) return deliverQueuedBeforeOutbox(job.data);
      const event = await repository.find(job.data.eventId);
      if (!event || event.state !== 'pending') return;
      const { delivery, after } = await attempt(event, 'auto');
      const fields = { eventId: event.id, sessionId: event.sessionId, type: event.type, attempts: after.attempts, httpStatus: delivery.httpStatus, error: delivery.error };
      if (delivery.ok) {
        app.metrics.eventDelivery('auto', 'delivered');
        app.log.info(fields, 'merchant event delivered');
        return;
      }
      if (after.state === 'failed') {
        app.metrics.eventDelivery('auto', 'gave_up');
        app.log.warn(fields, 'merchant event failed: gave up after MERCHANT_WEBHOOK_MAX_ATTEMPTS (redeliver it from the back office)');
        return;
      }
      app.metrics.eventDelivery('auto', 'retry');
      throw new Error(`merchant webhook ${delivery.httpStatus === null ? `failed: ${delivery.error}` : `answered ${delivery.httpStatus}`}`);
    });

    await app.workOn<{ eventId: string }>(EVENT_QUEUES.redeliver, REDELIVERY_WORKERS, async ([job]) => {
      if (!job || !sending) return;
      const event = await repository.find(job.data.eventId);
      if (event) await redeliver(event);
    });

    await app.workOn(EVENT_QUEUES.sweep, 1, async () => ({ queued: await sweep() }));
    await jobs.schedule(EVENT_QUEUES.sweep, config.RECONCILE_CRON);
  },
  { name: 'events', dependencies: ['config', 'db', 'jobs', 'sessions', 'privacy', 'metrics'] },
);
