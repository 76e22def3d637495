import type { FastifyInstance } from 'fastify';

/**
 * Reads and pokes the database the way tests need. A test's merchantBizIds are random, so one
 * names one session here (the service itself scopes them per caller).
 */
export function rowsOf(app: FastifyInstance) {
  const db = app.prisma;
  const withTransactions = { transactions: { orderBy: { seq: 'asc' as const } } };
  return {
    /** The session with this merchantBizId, with its transactions in order (throws when none). */
    session: (merchantBizId: string) => db.kycSession.findFirstOrThrow({ where: { merchantBizId }, include: withTransactions }),
    /** The same, or null. */
    sessionOrNull: (merchantBizId: string) => db.kycSession.findFirst({ where: { merchantBizId }, include: withTransactions }),
    /** One transaction of that session (the first by default). */
    transaction: (merchantBizId: string, seq = 1) => db.kycTransaction.findFirstOrThrow({ where: { session: { merchantBizId }, seq } }),
    /** Sets fields of the session(s) with these merchantBizIds. */
    update: (merchantBizIds: string | string[], data: Parameters<typeof db.kycSession.updateMany>[0]['data']) =>
      db.kycSession.updateMany({ where: { merchantBizId: { in: [merchantBizIds].flat() } }, data }),
    /** Moves the session's expiry (and its transactions') to `at`. */
    expire: async (merchantBizIds: string | string[], at = new Date(Date.now() - 1000)) => {
      const ids = [merchantBizIds].flat();
      await db.kycTransaction.updateMany({ where: { session: { merchantBizId: { in: ids } } }, data: { expiresAt: at } });
      await db.kycSession.updateMany({ where: { merchantBizId: { in: ids } }, data: { expiresAt: at } });
    },
    /** As if the database had been away when Initialize answered: the TransactionId was never stored. */
    forgetTransactionId: async (merchantBizId: string) => {
      await db.kycTransaction.updateMany({ where: { session: { merchantBizId } }, data: { transactionId: null, transactionUrl: null, protocol: null } });
      await db.kycSession.updateMany({ where: { merchantBizId }, data: { transactionId: null } });
    },
  };
}
