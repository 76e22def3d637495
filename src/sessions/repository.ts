import type { KycSession, PrismaClient } from '../generated/prisma/client.js';

export type Session = KycSession;

export interface Reservation {
  merchantBizId: string;
  userRef: string;
  docType: string;
  callbackTokenHash: string;
  expiresAt: Date;
}

/** All reads and writes of kyc_session. Every state change is a conditional update, safe under races. */
export class SessionRepository {
  constructor(private readonly prisma: PrismaClient) {}

  /** Inserts a pending session; returns false (and writes nothing) when the merchantBizId exists. */
  async reserve(r: Reservation): Promise<boolean> {
    const { count } = await this.prisma.kycSession.createMany({ data: [r], skipDuplicates: true });
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
  ): Promise<Session> {
    return this.prisma.kycSession.update({ where: { merchantBizId }, data: t });
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
   * Records a verification outcome once: only a session without one is updated. Returns false
   * when another outcome was recorded first (the caller re-reads and compares).
   */
  async recordOutcome(
    merchantBizId: string,
    o: { transactionId: string; passed: 'Y' | 'N'; subCode: string | null },
  ): Promise<boolean> {
    const { count } = await this.prisma.kycSession.updateMany({
      where: { merchantBizId, passed: null, OR: [{ transactionId: o.transactionId }, { transactionId: null }] },
      data: {
        transactionId: o.transactionId,
        passed: o.passed,
        subCode: o.subCode,
        status: o.passed === 'Y' ? 'passed' : 'failed',
        completedAt: new Date(),
      },
    });
    return count === 1;
  }
}
