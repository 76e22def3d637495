import type pg from 'pg';
import { toDbError } from '../db/errors.js';
import type { Db } from '../db/plugin.js';
import type { KycSession } from '../generated/prisma/client.js';
import type { SealedDetails } from '../results/details-cipher.js';

export type Session = KycSession;

export interface Reservation {
  merchantBizId: string;
  userRef: string;
  docType: string;
  callbackTokenHash: string;
  expiresAt: Date;
}

/**
 * All reads and writes of kyc_session. Every state change is a conditional update, safe under races.
 * The two writes of a start (reserve, attachTransaction) go to node-postgres directly, on the pool
 * under Prisma: through Prisma's query engine each took 0.4–0.6 ms more (README → Performance).
 */
export class SessionRepository {
  constructor(
    private readonly prisma: Db,
    private readonly pool: pg.Pool,
  ) {}

  /** One statement on the pool, its failures mapped like Prisma's (toDbError); resolves to the row count. */
  private async execute(text: string, values: unknown[]): Promise<number> {
    try {
      return (await this.pool.query(text, values)).rowCount ?? 0;
    } catch (err) {
      throw toDbError(err);
    }
  }

  /** Inserts a pending session; returns false (and writes nothing) when the merchantBizId exists. */
  async reserve(r: Reservation): Promise<boolean> {
    const count = await this.execute(
      `INSERT INTO kyc_session (merchant_biz_id, user_ref, doc_type, callback_token_hash, expires_at, updated_at)
       VALUES ($1, $2, $3, $4, $5, now())
       ON CONFLICT (merchant_biz_id) DO NOTHING`,
      [r.merchantBizId, r.userRef, r.docType, r.callbackTokenHash, r.expiresAt],
    );
    return count === 1;
  }

  findByMerchantBizId(merchantBizId: string): Promise<Session | null> {
    return this.prisma.kycSession.findUnique({ where: { merchantBizId } });
  }

  findByTransactionId(transactionId: string): Promise<Session | null> {
    return this.prisma.kycSession.findUnique({ where: { transactionId } });
  }

  /** Stores what Initialize returned on the reserved row. */
  async attachTransaction(
    merchantBizId: string,
    t: { transactionId: string; transactionUrl: string; protocol: string | null; expiresAt: Date; upstreamRequestId: string | null },
  ): Promise<void> {
    await this.execute(
      `UPDATE kyc_session
          SET transaction_id = $2, transaction_url = $3, protocol = $4, expires_at = $5, upstream_request_id = $6, updated_at = now()
        WHERE merchant_biz_id = $1`,
      [merchantBizId, t.transactionId, t.transactionUrl, t.protocol, t.expiresAt, t.upstreamRequestId],
    );
  }

  /** Records why a reserved session could not be started. */
  async markError(merchantBizId: string, errorCode: string, upstreamRequestId: string | null): Promise<void> {
    await this.prisma.kycSession.updateMany({
      where: { merchantBizId, status: 'pending', transactionId: null },
      data: { status: 'error', errorCode, upstreamRequestId },
    });
  }

  /** Drops a reservation that never reached Alibaba, so the caller may retry with the same id. */
  async release(merchantBizId: string): Promise<void> {
    await this.prisma.kycSession.deleteMany({ where: { merchantBizId, status: 'pending', transactionId: null } });
  }

  /**
   * Records the first valid callback: its outcome is kept as a hint and the session moves to
   * `verifying` until CheckResult decides (a session CheckResult already decided keeps its status).
   * Returns false when a callback was recorded first (the caller re-reads and compares).
   */
  async recordCallback(
    merchantBizId: string,
    c: { transactionId: string; passed: 'Y' | 'N'; subCode: string | null },
  ): Promise<boolean> {
    const count = await this.prisma.$executeRaw`
      UPDATE kyc_session
         SET callback_passed = ${c.passed}, callback_sub_code = ${c.subCode}, callback_at = now(),
             transaction_id = ${c.transactionId}, updated_at = now(),
             status = CASE WHEN status IN ('passed', 'failed') THEN status ELSE 'verifying'::"SessionStatus" END
       WHERE merchant_biz_id = ${merchantBizId}
         AND callback_passed IS NULL
         AND (transaction_id = ${c.transactionId} OR transaction_id IS NULL)`;
    return count === 1;
  }

  /**
   * Records CheckResult's verdict once, on a session still waiting for one. Returns false when
   * the session had already been decided.
   */
  async recordResult(
    merchantBizId: string,
    r: { passed: 'Y' | 'N'; subCode: string | null; details: SealedDetails | null },
  ): Promise<boolean> {
    const now = new Date();
    const { count } = await this.prisma.kycSession.updateMany({
      where: { merchantBizId, status: { in: ['verifying', 'pending', 'expired'] }, passed: null },
      data: {
        status: r.passed === 'Y' ? 'passed' : 'failed',
        passed: r.passed,
        subCode: r.subCode,
        checkedAt: now,
        completedAt: now,
        ...(r.details
          ? { detailsCiphertext: new Uint8Array(r.details.ciphertext), detailsKeyId: r.details.keyId, detailsStoredAt: now }
          : {}),
      },
    });
    return count === 1;
  }

  /**
   * CheckResult gave up without a verdict: the session, waiting (`pending`) or `verifying`, ends
   * `error` with a reason. Returns false when it had been decided meanwhile.
   */
  async markUnresolved(merchantBizId: string, errorCode: string): Promise<boolean> {
    const { count } = await this.prisma.kycSession.updateMany({
      where: { merchantBizId, status: { in: ['verifying', 'pending'] }, passed: null },
      data: { status: 'error', errorCode, checkedAt: new Date() },
    });
    return count === 1;
  }

  /**
   * A session past its expiry that CheckResult reports still in progress ends `expired`, but only
   * from the state that answer was about: `pending`, with no callback recorded. Returns false
   * (and writes nothing) when a callback came meanwhile: that session is `verifying`, for
   * CheckResult to decide.
   */
  async expirePending(merchantBizId: string): Promise<boolean> {
    const { count } = await this.prisma.kycSession.updateMany({
      where: { merchantBizId, status: 'pending', callbackPassed: null, passed: null },
      data: { status: 'expired', errorCode: null, checkedAt: new Date() },
    });
    return count === 1;
  }

  /** Pending sessions past their expiry whose Initialize never answered: nothing to ask Alibaba. */
  async expireUnstarted(now = new Date()): Promise<number> {
    const { count } = await this.prisma.kycSession.updateMany({
      where: { status: 'pending', expiresAt: { lt: now }, transactionId: null },
      data: { status: 'expired' },
    });
    return count;
  }

  /** Sessions that need a CheckResult without having asked for one: expired without callback, or stuck verifying. */
  async findToReconcile(now: Date, stuckBefore: Date, limit: number): Promise<Array<{ merchantBizId: string }>> {
    return this.prisma.kycSession.findMany({
      where: {
        OR: [
          { status: 'pending', expiresAt: { lt: now }, transactionId: { not: null } },
          { status: 'verifying', updatedAt: { lt: stuckBefore } },
        ],
      },
      select: { merchantBizId: true },
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
