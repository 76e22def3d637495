import type { KycSession } from '../generated/prisma/client.js';

export const PUBLIC_STATUSES = ['pending', 'verifying', 'passed', 'failed', 'expired', 'error'] as const;

/** States a session ends in. `passed`/`failed` never change; a late callback can reopen `expired`/`error` (to `verifying`). */
export const FINAL_STATUSES = ['passed', 'failed', 'expired', 'error'] as const;
export type PublicStatus = (typeof PUBLIC_STATUSES)[number];

/** Alibaba's TransactionId and TransactionUrl expire 30 minutes after issue. */
export const TRANSACTION_TTL_MS = 30 * 60 * 1000;

/** The status a caller sees: a pending session past its expiry, with no outcome, reads `expired`. */
export function publicStatus(session: Pick<KycSession, 'status' | 'expiresAt'>, now = new Date()): PublicStatus {
  if (session.status === 'pending' && session.expiresAt.getTime() <= now.getTime()) return 'expired';
  return session.status;
}
