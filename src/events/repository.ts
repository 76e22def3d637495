import type pg from 'pg';
import { query } from '../db/query.js';

export const EVENT_TYPES = ['kyc.session.verifying', 'kyc.session.finished', 'kyc.session.expired', 'kyc.session.redacted'] as const;
export type EventType = (typeof EVENT_TYPES)[number];
export const EVENT_STATES = ['pending', 'delivered', 'failed'] as const;
export type EventState = (typeof EVENT_STATES)[number];
export type DeliveryTrigger = 'auto' | 'redeliver';

/** An outbox row: what the trigger kyc_session_event recorded, and where its delivery stands. */
export interface EventRow {
  id: string;
  sessionId: string;
  sequence: number;
  type: EventType;
  /** The event's data without the person (see deliver.ts). */
  data: Record<string, unknown>;
  state: EventState;
  /** Automatic delivery attempts (redeliveries are not counted against MERCHANT_WEBHOOK_MAX_ATTEMPTS). */
  attempts: number;
  createdAt: Date;
  lastAttemptAt: Date | null;
  deliveredAt: Date | null;
}

export interface DeliveryRow {
  eventId: string;
  at: Date;
  trigger: DeliveryTrigger;
  httpStatus: number | null;
  error: string | null;
  latencyMs: number;
}

export interface EventFilter {
  state?: EventState | undefined;
  since?: Date | undefined;
  sessionId?: string | undefined;
  /** Keyset cursor: events strictly older than this (createdAt, id). */
  before?: { createdAt: Date; id: string } | undefined;
}

const COLUMNS = `id, session_id AS "sessionId", sequence, type, data, state, attempts, created_at AS "createdAt",
  last_attempt_at AS "lastAttemptAt", delivered_at AS "deliveredAt"`;

/** The outbox of merchant events (kyc_event) and their delivery attempts (kyc_event_delivery). */
export class EventRepository {
  constructor(private readonly pool: pg.Pool) {}

  async find(id: string): Promise<EventRow | null> {
    const { rows } = await query<EventRow>(this.pool, `SELECT ${COLUMNS} FROM kyc_event WHERE id = $1`, [id]);
    return rows[0] ?? null;
  }

  /** A session's events still to be delivered, in sequence. */
  async pendingOf(sessionId: string): Promise<string[]> {
    const { rows } = await query<{ id: string }>(
      this.pool,
      `SELECT id FROM kyc_event WHERE session_id = $1 AND state = 'pending' ORDER BY sequence`,
      [sessionId],
    );
    return rows.map((r) => r.id);
  }

  /** Events still to be delivered that were recorded before `before`, oldest first (the sweep's). */
  async pending(before: Date, limit: number): Promise<string[]> {
    const { rows } = await query<{ id: string }>(
      this.pool,
      `SELECT id FROM kyc_event WHERE state = 'pending' AND created_at < $1 ORDER BY created_at LIMIT $2`,
      [before, limit],
    );
    return rows.map((r) => r.id);
  }

  /**
   * Records one delivery attempt and what it did to the event: delivered on a 2xx (whatever its
   * state was); `failed` when an automatic attempt that failed was the event's `maxAttempts`th.
   * Returns the event after it, or null when there is no such event.
   */
  async recordDelivery(
    eventId: string,
    trigger: DeliveryTrigger,
    d: { ok: boolean; httpStatus: number | null; error: string | null; latencyMs: number },
    maxAttempts: number,
  ): Promise<EventRow | null> {
    const { rows } = await query<EventRow>(
      this.pool,
      `WITH d AS (
         INSERT INTO kyc_event_delivery (event_id, trigger, http_status, error, latency_ms)
         SELECT id, $2, $3, $4, $5 FROM kyc_event WHERE id = $1
         RETURNING at
       )
       UPDATE kyc_event e
          SET attempts = e.attempts + CASE WHEN $2 = 'auto' THEN 1 ELSE 0 END,
              last_attempt_at = d.at,
              state = CASE WHEN $6 THEN 'delivered'::"EventState"
                           WHEN $2 = 'auto' AND e.state = 'pending' AND e.attempts + 1 >= $7 THEN 'failed'::"EventState"
                           ELSE e.state END,
              delivered_at = CASE WHEN $6 THEN d.at ELSE e.delivered_at END
         FROM d
        WHERE e.id = $1
       RETURNING ${COLUMNS}`,
      [eventId, trigger, d.httpStatus, d.error, d.latencyMs, d.ok, maxAttempts],
    );
    return rows[0] ?? null;
  }

  /** Events newest first, filtered, after the cursor. */
  async list(filter: EventFilter, limit: number): Promise<EventRow[]> {
    const { rows } = await query<EventRow>(
      this.pool,
      `SELECT ${COLUMNS} FROM kyc_event
        WHERE ($1::"EventState" IS NULL OR state = $1)
          AND ($2::timestamptz IS NULL OR created_at >= $2)
          AND ($3::uuid IS NULL OR session_id = $3)
          AND ($4::timestamptz IS NULL OR (created_at, id) < ($4, $5::varchar))
        ORDER BY created_at DESC, id DESC
        LIMIT $6`,
      [filter.state ?? null, filter.since ?? null, filter.sessionId ?? null, filter.before?.createdAt ?? null, filter.before?.id ?? null, limit],
    );
    return rows;
  }

  /** The delivery attempts of these events, oldest first. */
  async deliveriesOf(eventIds: string[]): Promise<DeliveryRow[]> {
    if (eventIds.length === 0) return [];
    const { rows } = await query<DeliveryRow>(
      this.pool,
      `SELECT event_id AS "eventId", at, trigger, http_status AS "httpStatus", error, latency_ms AS "latencyMs"
         FROM kyc_event_delivery WHERE event_id = ANY($1) ORDER BY at, id`,
      [eventIds],
    );
    return rows;
  }

  /** The events a bulk redelivery sends: in `state`, recorded since `since`, oldest first. */
  async forRedelivery(state: EventState, since: Date, limit: number): Promise<EventRow[]> {
    const { rows } = await query<EventRow>(
      this.pool,
      `SELECT ${COLUMNS} FROM kyc_event WHERE state = $1 AND created_at >= $2 ORDER BY created_at, id LIMIT $3`,
      [state, since, limit],
    );
    return rows;
  }

  /**
   * The event of a session decided before the outbox existed (its status changed before the
   * trigger did: event_seq is still 0), recorded now, for a merchant event job queued by an earlier
   * version. The same id as the trigger would have given it.
   */
  async recordBeforeOutbox(sessionId: string): Promise<void> {
    await query(
      this.pool,
      `WITH e AS (
         INSERT INTO kyc_event (id, session_id, sequence, type, data)
         SELECT kyc_event_id(id, status::text), id, 1,
                CASE WHEN status = 'expired' THEN 'kyc.session.expired' ELSE 'kyc.session.finished' END,
                jsonb_strip_nulls(jsonb_build_object('id', id, 'merchantBizId', merchant_biz_id, 'status', status, 'passed', passed, 'subCode', sub_code))
                  || jsonb_build_object('transactionId', COALESCE(decided_transaction_id, transaction_id))
           FROM kyc_session
          WHERE id = $1 AND event_seq = 0 AND status IN ('passed', 'failed', 'expired', 'error')
         ON CONFLICT (id) DO NOTHING
         RETURNING session_id
       )
       UPDATE kyc_session SET event_seq = 1 WHERE id IN (SELECT session_id FROM e) AND event_seq = 0`,
      [sessionId],
    );
  }
}
