import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { Session } from '../sessions/repository.js';

/** The event a merchant's backend receives when a session reaches a final state. */
export interface SessionEvent {
  /** Stable per session and status: redeliveries carry the same id, so receivers can de-duplicate. */
  id: string;
  type: 'kyc.session.finished';
  createdAt: string;
  data: {
    /** The session's own id. */
    id: string;
    merchantBizId: string;
    /** The person: the caller's JWT `sub` as the merchant's identity provider issued it (null for sessions from before it was kept). */
    userId: string | null;
    /** The transaction that decided the session, else its newest. */
    transactionId: string | null;
    status: string;
    passed?: string;
    subCode?: string;
  };
}

export function sessionEvent(session: Session, userId: string | null): SessionEvent {
  const id = `evt_${createHash('sha256').update(`${session.id}:${session.status}`).digest('hex').slice(0, 32)}`;
  return {
    id,
    type: 'kyc.session.finished',
    createdAt: (session.checkedAt ?? session.updatedAt).toISOString(),
    data: {
      id: session.id,
      merchantBizId: session.merchantBizId,
      userId,
      transactionId: session.decidedTransactionId ?? session.transactionId,
      status: session.status,
      ...(session.passed ? { passed: session.passed } : {}),
      ...(session.subCode ? { subCode: session.subCode } : {}),
    },
  };
}

export const SIGNATURE_HEADER = 'x-kyc-signature';
export const EVENT_ID_HEADER = 'x-kyc-event-id';

/** `t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`: the timestamp is signed with the body. */
export function signWebhook(secret: string, body: string, timestamp = Math.floor(Date.now() / 1000)): string {
  const v1 = createHmac('sha256', secret).update(`${timestamp}.${body}`, 'utf8').digest('hex');
  return `t=${timestamp},v1=${v1}`;
}

/**
 * What a receiver runs: the signature must match and be recent (replays of old deliveries fail).
 * Exported so merchants' own code and our tests verify exactly what we sign.
 */
export function verifyWebhook(secret: string, header: string, body: string, toleranceSeconds = 300, now = Date.now()): boolean {
  const parts = Object.fromEntries(header.split(',').map((p) => p.split('=', 2) as [string, string]));
  const t = Number(parts.t);
  if (!Number.isInteger(t) || Math.abs(now / 1000 - t) > toleranceSeconds || !parts.v1) return false;
  const expected = Buffer.from(signWebhook(secret, body, t).split('v1=')[1]!, 'hex');
  const presented = Buffer.from(parts.v1, 'hex');
  return presented.length === expected.length && timingSafeEqual(presented, expected);
}

/** How long one delivery may take, answer included, before it is abandoned (and retried). */
export const WEBHOOK_TIMEOUT_MS = 5000;

/** One delivery attempt; throws on anything but a 2xx so the job retries. */
export async function deliverEvent(url: string, secret: string, event: SessionEvent, timeoutMs = WEBHOOK_TIMEOUT_MS): Promise<void> {
  const body = JSON.stringify(event);
  const res = await fetch(url, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'user-agent': 'kyc-gateway',
      [EVENT_ID_HEADER]: event.id,
      [SIGNATURE_HEADER]: signWebhook(secret, body),
    },
    body,
    signal: AbortSignal.timeout(timeoutMs),
  });
  await res.arrayBuffer();
  if (!res.ok) throw new Error(`merchant webhook answered ${res.status}`);
}
