import type { EventRow, EventType } from './repository.js';

/**
 * What a merchant's backend receives (POSTed as JSON, signed): one change of one session. `id` is
 * stable per session and status (a redelivery carries the same id and sequence), and `sequence`
 * only grows per session, so a receiver drops an event whose sequence it has seen or passed.
 */
export interface SessionEvent {
  id: string;
  type: EventType;
  /** When the change happened (not when it was sent). */
  createdAt: string;
  sessionId: string;
  sequence: number;
  data: {
    /** The session's own id. */
    id: string;
    merchantBizId: string;
    /**
     * The person: the caller's JWT `sub` as the merchant's identity provider issued it (null for
     * sessions from before it was kept, and once the session is erased). Never in `redacted` events.
     */
    userId?: string | null;
    /** The transaction that decided the session, else its newest. */
    transactionId: string | null;
    status: string;
    passed?: string;
    subCode?: string;
    /** `redacted` events: when the personal data here was removed, and each transaction's deletion at Alibaba by result. */
    redactedAt?: string;
    upstreamDeletions?: Record<string, number>;
  };
}

const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

/** The event as sent: the outbox row, with the person added (except in `redacted` events). */
export function envelope(event: EventRow, userId: string | null): SessionEvent {
  const d = event.data;
  const passed = str(d.passed);
  const subCode = str(d.subCode);
  const redactedAt = str(d.redactedAt);
  return {
    id: event.id,
    type: event.type,
    createdAt: event.createdAt.toISOString(),
    sessionId: event.sessionId,
    sequence: event.sequence,
    data: {
      id: event.sessionId,
      merchantBizId: String(d.merchantBizId),
      ...(event.type === 'kyc.session.redacted' ? {} : { userId }),
      transactionId: str(d.transactionId) ?? null,
      status: String(d.status),
      ...(passed ? { passed } : {}),
      ...(subCode ? { subCode } : {}),
      ...(redactedAt ? { redactedAt } : {}),
      ...(d.upstreamDeletions && typeof d.upstreamDeletions === 'object' ? { upstreamDeletions: d.upstreamDeletions as Record<string, number> } : {}),
    },
  };
}
