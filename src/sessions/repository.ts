import type pg from 'pg';
import { query } from '../db/query.js';
import type { Db } from '../db/plugin.js';
import type { KycSession, KycTransaction } from '../generated/prisma/client.js';
import type { Sealed } from '../privacy/cipher.js';
import type { SessionChanges } from './changes.js';
import { StatusCache } from './status-cache.js';

export type Session = KycSession;
export type Transaction = KycTransaction;
export type SessionWithTransactions = Session & { transactions: Transaction[] };
/** A transaction, with when its session's erasure was asked for. */
export type TransactionOfSession = Transaction & { session: { erasureRequestedAt: Date | null } };
const ERASURE_OF_SESSION = { session: { select: { erasureRequestedAt: true } } } as const;

export type SessionStatusRow = Pick<Session, 'id' | 'merchantBizId' | 'status' | 'transactionId' | 'expiresAt' | 'passed' | 'subCode' | 'updatedAt'> & {
  attempts: number;
};

export interface NewSession {
  id: string;
  merchantBizId: string;
  userRef: string;
  /** The caller's `sub`, sealed with the session id as associated data. */
  userId: Sealed;
  docType: string;
  /** Of the first transaction. */
  callbackTokenHash: string;
  /** Upper bound until Initialize answers, so an interrupted start still expires. */
  expiresAt: Date;
}

export interface NewTransaction {
  sessionId: string;
  userRef: string;
  callbackTokenHash: string;
  expiresAt: Date;
}

/** What Initialize returned, stored on its transaction and as the session's newest. */
export interface IssuedTransaction {
  transactionId: string;
  transactionUrl: string;
  protocol: string | null;
  expiresAt: Date;
  upstreamRequestId: string | null;
}

export interface Caps {
  /** Initialize calls per session (its start and its resumes). */
  perSession: number;
  /** Initialize calls per caller in any 24 hours. */
  perUserPerDay: number;
}

/** A reservation's outcome: a transaction row to call Initialize for, or why there is none. */
export type Reserved =
  | { kind: 'reserved'; seq: number; quotaStamp: string }
  | { kind: 'exists' }
  | { kind: 'busy' }
  | { kind: 'session-cap' }
  | { kind: 'day-cap'; retryAfterS: number };

/** The verdict CheckResult gave one transaction, and whether it settled its session. */
export interface RecordedResult {
  /** The session took this verdict (the first one decided). */
  settled: boolean;
}

const UNIQUE_VIOLATION = '23505';

/** The status read: one session of one caller, with its number of transactions. */
const STATUS_QUERY = `SELECT s.id, s.merchant_biz_id AS "merchantBizId", s.status, s.transaction_id AS "transactionId", s.expires_at AS "expiresAt",
        s.passed, s.sub_code AS "subCode", s.updated_at AS "updatedAt",
        (SELECT count(*)::int FROM kyc_transaction t WHERE t.session_id = s.id) AS attempts
   FROM kyc_session s
  WHERE s.user_ref = $1 AND s.merchant_biz_id = $2`;

/**
 * The day cap, in a data-modifying CTE over `$quotaUser` (the caller's ref) and `$quotaMax`: the
 * caller's row keeps the times of their Initialize calls of the last 24 hours, and gets this one
 * only while they are fewer than the cap. ON CONFLICT … DO UPDATE … WHERE locks the row and
 * re-checks the condition on its newest version, so concurrent starts of one caller cannot both
 * take the last place. RETURNING now() (as text: it has microseconds) identifies the entry, to give it
 * back (releaseTransaction).
 */
const quotaCte = (source: string, quotaUser: string, quotaMax: string) => `
  quota AS (
    INSERT INTO kyc_user_quota AS q (user_ref, starts)
    SELECT ${quotaUser}, ARRAY[now()] FROM ${source}
    ON CONFLICT (user_ref) DO UPDATE
       SET starts = ARRAY(SELECT x FROM unnest(q.starts) x WHERE x > now() - interval '1 day') || now()
     WHERE (SELECT count(*) FROM unnest(q.starts) x WHERE x > now() - interval '1 day') < ${quotaMax}
    RETURNING now()::text AS stamp
  )`;

/** Where a status came from: the status cache, a query another read of it had under way, or a query of its own. */
export type StatusSource = 'cache' | 'shared' | 'database';

/**
 * All reads and writes of sessions and their transactions. Every state change is a conditional
 * update, safe under races. The writes of a start go to node-postgres directly, on the pool under
 * Prisma: through Prisma's query engine each took 0.4–0.6 ms more (README → Performance).
 *
 * Every method that changes a session's status or its transactions tells the change feed which
 * sessions it changed, after the write committed (`this.changed`): that is what wakes long polls on
 * every instance and evicts cached statuses. A new state-changing method must call it too.
 */
export class SessionRepository {
  private readonly statusCache: StatusCache<SessionStatusRow> | undefined;

  /** Without a change feed (`changes`), nothing is published and status reads are not cached. */
  constructor(
    private readonly prisma: Db,
    private readonly pool: pg.Pool,
    private readonly changes?: SessionChanges,
  ) {
    this.statusCache = changes ? new StatusCache<SessionStatusRow>(changes) : undefined;
  }

  /** Tells the change feed these sessions changed (call it after the write committed). Never throws. */
  private changed(...sessionIds: string[]): void {
    if (sessionIds.length > 0) this.changes?.changed(sessionIds);
  }

  /** One statement on the pool (db/query.ts). */
  private query<R extends pg.QueryResultRow>(text: string | { name: string; text: string }, values: unknown[]): Promise<pg.QueryResult<R>> {
    return query<R>(this.pool, text, values);
  }

  /**
   * Inserts a pending session with its first transaction, in one statement, unless the caller
   * already has a session with this merchantBizId (`exists`) or reached the day cap (`day-cap`:
   * then nothing is left written).
   */
  async reserveSession(s: NewSession, caps: Caps): Promise<Reserved> {
    const { rows } = await this.query<{ inserted: boolean; stamp: string | null }>(
      `WITH s AS (
         INSERT INTO kyc_session (id, merchant_biz_id, user_ref, user_id_ciphertext, user_id_key_id, doc_type, expires_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, now())
         ON CONFLICT (user_ref, merchant_biz_id) DO NOTHING
         RETURNING id
       ),${quotaCte('s', '$3', '$9')},
       t AS (
         INSERT INTO kyc_transaction (session_id, seq, callback_token_hash, expires_at, updated_at)
         SELECT s.id, 1, $8, $7, now() FROM s, quota
         RETURNING seq
       )
       SELECT EXISTS (SELECT 1 FROM s) AS inserted, (SELECT stamp FROM quota) AS stamp`,
      [s.id, s.merchantBizId, s.userRef, s.userId.ciphertext, s.userId.keyId, s.docType, s.expiresAt, s.callbackTokenHash, caps.perUserPerDay],
    );
    const row = rows[0];
    if (!row?.inserted) return { kind: 'exists' };
    if (row.stamp) return { kind: 'reserved', seq: 1, quotaStamp: row.stamp };
    // The day cap refused: take the session back, so that nothing of this start remains.
    await this.query('DELETE FROM kyc_session WHERE id = $1', [s.id]);
    this.changed(s.id); // a status read may have seen it meanwhile
    return { kind: 'day-cap', retryAfterS: await this.quotaRetryAfterS(s.userRef) };
  }

  /**
   * Reserves the next transaction of a session (a resume), within both caps. Two resumes at once:
   * one gets the row, the other `busy` (the (session, seq) key; its statement rolls back whole).
   */
  async reserveTransaction(t: NewTransaction, caps: Caps): Promise<Reserved> {
    let rows: Array<{ n: string; stamp: string | null; seq: number | null }>;
    try {
      ({ rows } = await this.query<{ n: string; stamp: string | null; seq: number | null }>(
        `WITH cur AS (
           SELECT count(*) AS n FROM kyc_transaction WHERE session_id = $1
         ), under AS (
           SELECT 1 FROM cur WHERE n < $5
         ),${quotaCte('under', '$2', '$6')},
         t AS (
           INSERT INTO kyc_transaction (session_id, seq, callback_token_hash, expires_at, updated_at)
           SELECT $1, cur.n + 1, $3, $4, now() FROM cur, quota
           RETURNING seq
         )
         SELECT (SELECT n FROM cur) AS n, (SELECT stamp FROM quota) AS stamp, (SELECT seq FROM t) AS seq`,
        [t.sessionId, t.userRef, t.callbackTokenHash, t.expiresAt, caps.perSession, caps.perUserPerDay],
      ));
    } catch (err) {
      if ((err as { code?: string }).code === UNIQUE_VIOLATION) return { kind: 'busy' };
      throw err;
    }
    const row = rows[0];
    if (!row || Number(row.n) >= caps.perSession) return { kind: 'session-cap' };
    if (!row.stamp || row.seq === null) return { kind: 'day-cap', retryAfterS: await this.quotaRetryAfterS(t.userRef) };
    this.changed(t.sessionId); // one more attempt
    return { kind: 'reserved', seq: row.seq, quotaStamp: row.stamp };
  }

  /** Seconds until the caller's oldest Initialize of the last 24 hours leaves the window. */
  private async quotaRetryAfterS(userRef: string): Promise<number> {
    const { rows } = await this.query<{ s: string | null }>(
      `SELECT ceil(extract(epoch FROM min(x) + interval '1 day' - now())) AS s
         FROM kyc_user_quota, unnest(starts) x
        WHERE user_ref = $1 AND x > now() - interval '1 day'`,
      [userRef],
    );
    return Math.max(1, Number(rows[0]?.s ?? 1));
  }

  /** Stores what Initialize returned on its transaction, and makes it the session's newest. */
  async attachTransaction(sessionId: string, seq: number, t: IssuedTransaction): Promise<void> {
    const { rowCount } = await this.query(
      `WITH t AS (
         UPDATE kyc_transaction
            SET transaction_id = $3, transaction_url = $4, protocol = $5, expires_at = $6, upstream_request_id = $7, updated_at = now()
          WHERE session_id = $1 AND seq = $2
         RETURNING seq
       )
       UPDATE kyc_session
          SET transaction_id = $3, expires_at = $6, upstream_request_id = $7, updated_at = now(),
              -- A resume brings an expired or unstarted session back (not an erased one); a callback that came meanwhile keeps its state.
              status = CASE WHEN status IN ('expired', 'error') AND passed IS NULL AND erasure_requested_at IS NULL THEN 'pending'::"SessionStatus" ELSE status END,
              error_code = CASE WHEN status IN ('expired', 'error') AND passed IS NULL AND erasure_requested_at IS NULL THEN NULL ELSE error_code END
        WHERE id = $1 AND EXISTS (SELECT 1 FROM t)`,
      [sessionId, seq, t.transactionId, t.transactionUrl, t.protocol, t.expiresAt, t.upstreamRequestId],
    );
    if (rowCount === 1) this.changed(sessionId);
  }

  /**
   * Records why an Initialize failed at Alibaba. The first one leaves its session `error` (nothing
   * was started); a failed resume leaves its session as it was.
   */
  async markStartFailed(sessionId: string, seq: number, errorCode: string, upstreamRequestId: string | null): Promise<void> {
    const { rows } = await this.query<{ changed: boolean }>(
      `WITH t AS (
         UPDATE kyc_transaction SET error_code = $3, upstream_request_id = $4, updated_at = now()
          WHERE session_id = $1 AND seq = $2 AND transaction_id IS NULL
         RETURNING seq
       ), s AS (
         UPDATE kyc_session SET status = 'error', error_code = $3, upstream_request_id = $4, updated_at = now()
          WHERE id = $1 AND status = 'pending' AND transaction_id IS NULL AND EXISTS (SELECT 1 FROM t WHERE seq = 1)
       )
       SELECT EXISTS (SELECT 1 FROM t) AS changed`,
      [sessionId, seq, errorCode, upstreamRequestId],
    );
    if (rows[0]?.changed) this.changed(sessionId);
  }

  /**
   * Drops a transaction that never reached Alibaba (no budget slot, caller gone) and gives its
   * place in the day cap back; a session left without transactions goes too, so the caller may
   * retry with the same merchantBizId.
   */
  async releaseTransaction(sessionId: string, seq: number, userRef: string, quotaStamp: string): Promise<void> {
    const { rows } = await this.query<{ changed: boolean }>(
      `WITH t AS (
         DELETE FROM kyc_transaction WHERE session_id = $1 AND seq = $2 AND transaction_id IS NULL RETURNING seq
       ), q AS (
         UPDATE kyc_user_quota SET starts = array_remove(starts, $4::timestamptz) WHERE user_ref = $3 AND EXISTS (SELECT 1 FROM t)
       ), s AS (
         DELETE FROM kyc_session
          WHERE id = $1 AND EXISTS (SELECT 1 FROM t WHERE seq = 1) AND status = 'pending' AND transaction_id IS NULL
       )
       SELECT EXISTS (SELECT 1 FROM t) AS changed`,
      [sessionId, seq, userRef, quotaStamp],
    );
    if (rows[0]?.changed) this.changed(sessionId);
  }

  /** The caller's session with this merchantBizId. */
  findOwn(userRef: string, merchantBizId: string): Promise<Session | null> {
    return this.prisma.kycSession.findUnique({ where: { userRef_merchantBizId: { userRef, merchantBizId } } });
  }

  /**
   * What a caller's status read needs (the route frontends poll): the session and how many
   * transactions it has. From the status cache while the change feed keeps it current, otherwise
   * one prepared statement on the pool (shared by the reads of the same session that come while it
   * runs); `fresh` skips the cache and sharing (a long poll's read after a wake-up or at its
   * timeout). `onSource` is told where the answer came from.
   */
  async statusOf(
    userRef: string,
    merchantBizId: string,
    options: { fresh?: boolean; onSource?: (source: StatusSource) => void } = {},
  ): Promise<SessionStatusRow | null> {
    // Named: prepared once per connection.
    const read = async () => (await this.query<SessionStatusRow>({ name: 'kyc-status-of', text: STATUS_QUERY }, [userRef, merchantBizId])).rows[0] ?? null;
    const cache = this.statusCache;
    if (!cache || options.fresh) {
      options.onSource?.('database');
      return read();
    }
    const key = StatusCache.key(userRef, merchantBizId);
    const cached = cache.get(key);
    if (cached) {
      options.onSource?.('cache');
      return cached;
    }
    const { row, shared } = cache.load(key, this.changes!.version, read);
    options.onSource?.(shared ? 'shared' : 'database');
    return row;
  }

  findById(id: string): Promise<Session | null> {
    return this.prisma.kycSession.findUnique({ where: { id } });
  }

  findByIdWithTransactions(id: string): Promise<SessionWithTransactions | null> {
    return this.prisma.kycSession.findUnique({ where: { id }, include: { transactions: { orderBy: { seq: 'asc' } } } });
  }

  /** Every session with this merchantBizId (one per caller that used it), oldest first. */
  listByMerchantBizId(merchantBizId: string, limit: number): Promise<SessionWithTransactions[]> {
    return this.prisma.kycSession.findMany({
      where: { merchantBizId },
      include: { transactions: { orderBy: { seq: 'asc' } } },
      orderBy: { createdAt: 'asc' },
      take: limit,
    });
  }

  /** The id of the one session with this merchantBizId, none when there are none or several (jobs queued before sessions had ids name one by it). */
  async onlySessionWith(merchantBizId: string): Promise<string | undefined> {
    const matches = await this.prisma.kycSession.findMany({ where: { merchantBizId }, select: { id: true }, take: 2 });
    return matches.length === 1 ? matches[0]!.id : undefined;
  }

  transactionsOf(sessionId: string): Promise<Transaction[]> {
    return this.prisma.kycTransaction.findMany({ where: { sessionId }, orderBy: { seq: 'asc' } });
  }

  /** A transaction with whether its session's erasure was asked for (what a callback needs), in one query. */
  findTransactionById(transactionId: string): Promise<TransactionOfSession | null> {
    return this.prisma.kycTransaction.findUnique({ where: { transactionId }, include: ERASURE_OF_SESSION });
  }

  findTransaction(sessionId: string, seq: number): Promise<TransactionOfSession | null> {
    return this.prisma.kycTransaction.findUnique({ where: { sessionId_seq: { sessionId, seq } }, include: ERASURE_OF_SESSION });
  }

  /**
   * Records a transaction's first valid callback (its TransactionId too, for one whose Initialize
   * answer was never stored), and moves its session to `verifying` for CheckResult to decide (a
   * decided session keeps its status). Returns false when a callback was recorded first (the
   * caller re-reads and compares).
   */
  async recordCallback(
    sessionId: string,
    seq: number,
    c: { transactionId: string; passed: 'Y' | 'N'; subCode: string | null },
  ): Promise<boolean> {
    const { rowCount } = await this.query(
      `WITH t AS (
         UPDATE kyc_transaction
            SET callback_passed = $3, callback_sub_code = $4, callback_at = now(), transaction_id = $5, updated_at = now()
          WHERE session_id = $1 AND seq = $2 AND callback_passed IS NULL AND (transaction_id = $5 OR transaction_id IS NULL)
            AND NOT EXISTS (SELECT 1 FROM kyc_session WHERE id = $1 AND erasure_requested_at IS NOT NULL)
         RETURNING seq
       )
       UPDATE kyc_session
          SET updated_at = now(),
              transaction_id = COALESCE(transaction_id, $5),
              status = CASE WHEN status IN ('passed', 'failed') THEN status ELSE 'verifying'::"SessionStatus" END
        WHERE id = $1 AND EXISTS (SELECT 1 FROM t)
          -- Re-checked on the row's newest version: an erasure committed meanwhile keeps it expired.
          AND erasure_requested_at IS NULL`,
      [sessionId, seq, c.passed, c.subCode, c.transactionId],
    );
    if (rowCount === 1) this.changed(sessionId);
    return rowCount === 1;
  }

  /**
   * Records CheckResult's verdict on its transaction, and on the session when it is the first
   * verdict the session gets (a decided session never changes).
   */
  async recordResult(
    sessionId: string,
    seq: number,
    r: { transactionId: string; passed: 'Y' | 'N'; subCode: string | null; details: Sealed | null },
  ): Promise<RecordedResult> {
    const { rows } = await this.query<{ settled: boolean; recorded: boolean }>(
      `WITH t AS (
         UPDATE kyc_transaction SET passed = $3, sub_code = $4, checked_at = now(), updated_at = now()
          WHERE session_id = $1 AND seq = $2 AND passed IS NULL
         RETURNING seq
       ), s AS (
         UPDATE kyc_session
            SET status = CASE WHEN $3 = 'Y' THEN 'passed'::"SessionStatus" ELSE 'failed'::"SessionStatus" END,
                passed = $3, sub_code = $4, decided_transaction_id = $5, checked_at = now(), completed_at = now(),
                error_code = NULL, updated_at = now(),
                details_ciphertext = COALESCE($6, details_ciphertext),
                details_key_id = COALESCE($7, details_key_id),
                details_stored_at = CASE WHEN $6::bytea IS NULL THEN details_stored_at ELSE now() END
          WHERE id = $1 AND passed IS NULL AND status IN ('verifying', 'pending', 'expired') AND erasure_requested_at IS NULL
         RETURNING id
       )
       SELECT EXISTS (SELECT 1 FROM s) AS settled, EXISTS (SELECT 1 FROM t) AS recorded`,
      [sessionId, seq, r.passed, r.subCode, r.transactionId, r.details?.ciphertext ?? null, r.details?.keyId ?? null],
    );
    const { settled = false, recorded = false } = rows[0] ?? {};
    if (settled || recorded) this.changed(sessionId);
    return { settled };
  }

  /**
   * CheckResult gave up without a verdict: the session, waiting (`pending`) or `verifying`, ends
   * `error` with a reason. Returns false when it had been decided meanwhile.
   */
  async markUnresolved(sessionId: string, errorCode: string): Promise<boolean> {
    const { count } = await this.prisma.kycSession.updateMany({
      where: { id: sessionId, status: { in: ['verifying', 'pending'] }, passed: null },
      data: { status: 'error', errorCode, checkedAt: new Date() },
    });
    if (count === 1) this.changed(sessionId);
    return count === 1;
  }

  /**
   * A session past its expiry that CheckResult reports still in progress ends `expired`, but only
   * from the state that answer was about: `pending`, with no callback recorded on any of its
   * transactions. Returns false (and writes nothing) when a callback came meanwhile: that session is
   * `verifying`, for CheckResult to decide.
   */
  async expirePending(sessionId: string): Promise<boolean> {
    const { rowCount } = await this.query(
      `UPDATE kyc_session SET status = 'expired', error_code = NULL, checked_at = now(), updated_at = now()
        WHERE id = $1 AND status = 'pending' AND passed IS NULL
          AND NOT EXISTS (SELECT 1 FROM kyc_transaction WHERE session_id = $1 AND callback_passed IS NOT NULL)`,
      [sessionId],
    );
    if (rowCount === 1) this.changed(sessionId);
    return rowCount === 1;
  }

  /** Pending sessions past their expiry whose Initialize never answered: nothing to ask Alibaba. */
  async expireUnstarted(now = new Date()): Promise<number> {
    const { rows } = await this.query<{ id: string }>(
      `UPDATE kyc_session SET status = 'expired', updated_at = now()
        WHERE status = 'pending' AND expires_at < $1 AND transaction_id IS NULL
       RETURNING id`,
      [now],
    );
    this.changed(...rows.map((r) => r.id));
    return rows.length;
  }

  /** Sessions that need a CheckResult without having asked for one: expired without callback, or stuck verifying. */
  async findToReconcile(now: Date, stuckBefore: Date, limit: number): Promise<Array<{ id: string }>> {
    return this.prisma.kycSession.findMany({
      where: {
        OR: [
          { status: 'pending', expiresAt: { lt: now }, transactionId: { not: null } },
          { status: 'verifying', updatedAt: { lt: stuckBefore } },
        ],
      },
      select: { id: true },
      orderBy: { expiresAt: 'asc' },
      take: limit,
    });
  }

  /** Forgets stored personal data older than the retention period. */
  async purgeDetails(storedBefore: Date): Promise<number> {
    const { count } = await this.prisma.kycSession.updateMany({
      where: { detailsStoredAt: { lt: storedBefore }, detailsCiphertext: { not: null } },
      data: { detailsCiphertext: null, detailsKeyId: null, detailsPurgedAt: new Date() },
    });
    return count;
  }
}
