import type pg from 'pg';
import { query } from '../db/query.js';
import type { SessionChangeNotifier } from '../sessions/changes.js';

export type UpstreamDeletion = 'none' | 'pending' | 'deleted' | 'absent' | 'rejected' | 'failed';

/** A transaction whose data at Alibaba is still to be deleted. */
export interface PendingDeletion {
  seq: number;
  transactionId: string;
  callbackPassed: string | null;
  expiresAt: Date;
}

export interface ErasureRequested {
  id: string;
  merchantBizId: string;
  requestedAt: Date;
  redactedAt: Date | null;
  /** Set: its erasure was complete before this request (nothing is left to do). */
  completedAt: Date | null;
}

/**
 * The SQL of erasure. A request detaches the session from its person at once (user_ref, and the
 * person's day-cap row when no other session of theirs is left) and ends it if it had no outcome;
 * the job then removes the rest (redactLocally) and records each deletion at Alibaba.
 */
export class ErasureRepository {
  /** `changes` hears of each session a write changed (its status, its person): long polls and status caches. */
  constructor(
    private readonly pool: pg.Pool,
    private readonly changes?: SessionChangeNotifier,
  ) {}

  /**
   * Asks for the erasure of these sessions, in one statement (idempotent): a pending or verifying
   * session ends `expired` (its event is recorded by the same statement), so a late callback cannot
   * revive it; a repeated request sends deletions that failed for good to Alibaba again. Returns the
   * sessions found.
   */
  async request(sessionIds: string[]): Promise<ErasureRequested[]> {
    if (sessionIds.length === 0) return [];
    const { rows } = await query<ErasureRequested>(
      this.pool,
      `WITH target AS (
         SELECT id, user_ref FROM kyc_session WHERE id = ANY($1::uuid[]) FOR UPDATE
       ), retried AS (
         UPDATE kyc_transaction SET upstream_deletion = 'pending', upstream_deletion_at = NULL, updated_at = now()
          WHERE session_id IN (SELECT id FROM target) AND upstream_deletion = 'failed'
         RETURNING session_id
       ), s AS (
         UPDATE kyc_session k
            SET erasure_requested_at = COALESCE(k.erasure_requested_at, now()),
                erasure_completed_at = CASE WHEN k.id IN (SELECT session_id FROM retried) THEN NULL ELSE k.erasure_completed_at END,
                user_ref = NULL,
                status = CASE WHEN k.status IN ('pending', 'verifying') THEN 'expired'::"SessionStatus" ELSE k.status END,
                updated_at = now()
           FROM target
          WHERE k.id = target.id
         RETURNING k.id, k.merchant_biz_id, target.user_ref AS old_ref, k.erasure_requested_at, k.redacted_at, k.erasure_completed_at
       ), quota AS (
         -- The person's Initialize times (the day cap), once no other session of theirs is left.
         DELETE FROM kyc_user_quota q
          WHERE q.user_ref IN (SELECT old_ref FROM s WHERE old_ref IS NOT NULL)
            AND NOT EXISTS (SELECT 1 FROM kyc_session o WHERE o.user_ref = q.user_ref AND o.id <> ALL($1::uuid[]))
       )
       SELECT id, merchant_biz_id AS "merchantBizId", erasure_requested_at AS "requestedAt", redacted_at AS "redactedAt",
              erasure_completed_at AS "completedAt"
         FROM s`,
      [sessionIds],
    );
    // Detached from its person (and maybe expired): a cached status of theirs must go.
    if (rows.length > 0) this.changes?.changed(rows.map((r) => r.id));
    return rows;
  }

  /** The sessions of a person (by their keyed hash) not yet being erased. */
  async sessionsOf(userRef: string): Promise<string[]> {
    const { rows } = await query<{ id: string }>(this.pool, 'SELECT id FROM kyc_session WHERE user_ref = $1', [userRef]);
    return rows.map((r) => r.id);
  }

  /** The person's day-cap row, whatever sessions remain (a person being erased). */
  async forgetQuota(userRef: string): Promise<void> {
    await query(this.pool, 'DELETE FROM kyc_user_quota WHERE user_ref = $1', [userRef]);
  }

  /** Sessions created before `before` whose erasure nobody asked for yet (retention), oldest first. */
  async olderThan(before: Date, limit: number): Promise<string[]> {
    const { rows } = await query<{ id: string }>(
      this.pool,
      'SELECT id FROM kyc_session WHERE created_at < $1 AND erasure_requested_at IS NULL ORDER BY created_at LIMIT $2',
      [before, limit],
    );
    return rows.map((r) => r.id);
  }

  /** Erasures asked for and not complete (their job may have been lost, or waits for a transaction to expire). */
  async unfinished(limit: number): Promise<string[]> {
    const { rows } = await query<{ id: string }>(
      this.pool,
      `SELECT id FROM kyc_session WHERE erasure_requested_at IS NOT NULL AND erasure_completed_at IS NULL
        ORDER BY erasure_requested_at LIMIT $1`,
      [limit],
    );
    return rows.map((r) => r.id);
  }

  /**
   * Removes the session's personal data here (idempotent; false when no erasure was asked for).
   * Kept: the tombstone (ids, merchantBizId, status, outcome, doc type, error codes, Alibaba's
   * TransactionIds and RequestIds, timestamps). Removed: the sealed user id and its keyed hash, the
   * result details, each transaction's callback token hash, TransactionUrl and Protocol. Each
   * transaction with a TransactionId gets its deletion at Alibaba to do; one without is `none`,
   * unless its Initialize may still be running (reserved after `inFlightSince`): decided next time.
   */
  async redactLocally(sessionId: string, inFlightSince: Date): Promise<boolean> {
    const { rowCount } = await query(
      this.pool,
      `WITH t AS (
         UPDATE kyc_transaction
            SET callback_token_hash = NULL, transaction_url = NULL, protocol = NULL, updated_at = now(),
                upstream_deletion = CASE
                  WHEN upstream_deletion IS NOT NULL THEN upstream_deletion
                  WHEN transaction_id IS NOT NULL THEN 'pending'::"UpstreamDeletion"
                  WHEN error_code IS NOT NULL OR created_at < $2 THEN 'none'::"UpstreamDeletion"
                END,
                upstream_deletion_at = CASE
                  WHEN upstream_deletion IS NULL AND transaction_id IS NULL AND (error_code IS NOT NULL OR created_at < $2) THEN now()
                  ELSE upstream_deletion_at
                END
          WHERE session_id = $1 AND EXISTS (SELECT 1 FROM kyc_session WHERE id = $1 AND erasure_requested_at IS NOT NULL)
         RETURNING seq
       )
       UPDATE kyc_session
          SET user_id_ciphertext = NULL, user_id_key_id = NULL, user_ref = NULL,
              details_purged_at = CASE WHEN details_ciphertext IS NOT NULL THEN now() ELSE details_purged_at END,
              details_ciphertext = NULL, details_key_id = NULL,
              status = CASE WHEN status IN ('pending', 'verifying') THEN 'expired'::"SessionStatus" ELSE status END,
              redacted_at = COALESCE(redacted_at, now()),
              updated_at = now()
        WHERE id = $1 AND erasure_requested_at IS NOT NULL`,
      [sessionId, inFlightSince],
    );
    if (rowCount === 1) this.changes?.changed([sessionId]);
    return rowCount === 1;
  }

  /** The session's transactions whose deletion at Alibaba is to be asked for. */
  async pendingDeletions(sessionId: string): Promise<PendingDeletion[]> {
    const { rows } = await query<PendingDeletion>(
      this.pool,
      `SELECT seq, transaction_id AS "transactionId", callback_passed AS "callbackPassed", expires_at AS "expiresAt"
         FROM kyc_transaction WHERE session_id = $1 AND upstream_deletion = 'pending' ORDER BY seq`,
      [sessionId],
    );
    return rows;
  }

  /** Records what one DeleteVerifyResult did (`pending`: failed, to be asked again). */
  async recordDeletion(sessionId: string, seq: number, state: Exclude<UpstreamDeletion, 'none'>, error: string | null): Promise<void> {
    await query(
      this.pool,
      `UPDATE kyc_transaction
          SET upstream_deletion = $3::"UpstreamDeletion", upstream_deletion_attempts = upstream_deletion_attempts + 1,
              upstream_deletion_error = $4, upstream_deletion_at = CASE WHEN $3 = 'pending' THEN NULL ELSE now() END, updated_at = now()
        WHERE session_id = $1 AND seq = $2 AND upstream_deletion = 'pending'`,
      [sessionId, seq, state, error],
    );
  }

  /**
   * Completes the erasure once every transaction's deletion at Alibaba has reached its final state;
   * the statement records the kyc.session.redacted event. Returns null when it is not complete yet,
   * else how many transactions Alibaba refused or kept failing for.
   */
  async complete(sessionId: string): Promise<{ incomplete: number } | null> {
    const { rows } = await query<{ incomplete: number }>(
      this.pool,
      `UPDATE kyc_session SET erasure_completed_at = now(), updated_at = now()
        WHERE id = $1 AND erasure_completed_at IS NULL AND redacted_at IS NOT NULL
          AND NOT EXISTS (SELECT 1 FROM kyc_transaction WHERE session_id = $1 AND (upstream_deletion IS NULL OR upstream_deletion = 'pending'))
       RETURNING (SELECT count(*)::int FROM kyc_transaction WHERE session_id = $1 AND upstream_deletion IN ('rejected', 'failed')) AS incomplete`,
      [sessionId],
    );
    return rows[0] ?? null;
  }
}
