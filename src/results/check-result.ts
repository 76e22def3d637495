import type { FastifyBaseLogger } from 'fastify';
import type { Config } from '../config/schema.js';
import { CloudAuthError } from '../cloudauth/errors.js';
import type { CheckResultResult, CloudAuthApi } from '../cloudauth/types.js';
import type { Sealer } from '../privacy/cipher.js';
import type { Session, SessionRepository, Transaction } from '../sessions/repository.js';
import { detailsText } from './details.js';

export interface CheckDeps {
  config: Config;
  sessions: SessionRepository;
  cloudauth: CloudAuthApi;
  sealer: Sealer;
  log: FastifyBaseLogger;
  /**
   * Sends the events the session's changes recorded (the database records each with its change;
   * called after it, and the events sweep covers a crash in between).
   */
  notify: (sessionId: string) => Promise<void>;
}

/** Thrown to have the job retried later (with backoff). */
export class RetryLater extends Error {
  override name = 'RetryLater';
}

export type CheckOutcome = 'passed' | 'failed' | 'expired' | 'error' | 'skipped';

/** The transactions of a session that CheckResult must answer for now. */
function dueForCheck(session: Session, transactions: Transaction[], now = Date.now()): Transaction[] {
  const unanswered = transactions.filter((t) => t.transactionId !== null && t.passed === null);
  // A callback said this transaction ended: always verified, even on a decided session (recorded, not applied).
  const called = unanswered.filter((t) => t.callbackPassed !== null);
  if (session.passed !== null) return called;
  // A session past its expiry without a callback: any of its transactions may have ended with its callback lost.
  if (session.status === 'pending' && session.expiresAt.getTime() <= now) return unanswered;
  return called;
}

/**
 * Asks CheckResult for the verdict of each transaction of a session that needs one, and records
 * it: only CheckResult decides `passed` or `failed`. The first transaction decided settles the
 * session; a later one is recorded on its transaction and logged, never applied. Passed "P" (still
 * running) is retried; a session past its expiry that never had a callback and still has no result
 * is `expired` (unless a callback comes while CheckResult runs: then CheckResult is asked again).
 * Throttling, 5xx, timeouts and an exhausted budget throw, so the job retries with backoff; on the
 * last attempt the session becomes `error`.
 */
export async function checkSession(deps: CheckDeps, sessionId: string, opts: { lastAttempt: boolean }): Promise<CheckOutcome> {
  const { sessions, log } = deps;
  const session = await sessions.findById(sessionId);
  // An erased session is never asked about again: CheckResult would fetch the person's data anew.
  if (!session || session.erasureRequestedAt !== null) return 'skipped';
  const due = dueForCheck(session, await sessions.transactionsOf(sessionId));
  if (due.length === 0) return 'skipped';

  const giveUp = async (errorCode: string): Promise<CheckOutcome> => {
    if (session.passed !== null) return session.passed === 'Y' ? 'passed' : 'failed';
    await sessions.markUnresolved(sessionId, errorCode);
    await deps.notify(sessionId);
    log.warn({ sessionId, errorCode }, 'CheckResult gave no verdict: session is error');
    return 'error';
  };

  let outcome: CheckOutcome | undefined;
  let pending = false;
  for (const transaction of due) {
    // Once the session is settled, its silent transactions (no callback) need no asking.
    if ((outcome || session.passed !== null) && transaction.callbackPassed === null) continue;
    let result: CheckResultResult;
    try {
      result = await deps.cloudauth.checkResult(
        { MerchantBizId: session.merchantBizId, TransactionId: transaction.transactionId!, IsReturnImage: deps.config.KYC_CHECKRESULT_RETURN_IMAGE },
        { log },
      );
    } catch (err) {
      if (err instanceof CloudAuthError && err.failure === 'rejected') return outcome ?? giveUp('CHECK_RESULT_REJECTED');
      if (opts.lastAttempt) return outcome ?? giveUp('CHECK_RESULT_UNAVAILABLE');
      throw err;
    }
    if (result.passed === 'Y' || result.passed === 'N') {
      outcome ??= await record(deps, session, transaction, { ...result, passed: result.passed });
    } else if (transaction.callbackPassed !== null) {
      pending = true;
    }
  }

  // A transaction whose callback came is still in progress ("P"): ask again later.
  if (pending) {
    if (opts.lastAttempt) return outcome ?? giveUp('CHECK_RESULT_PENDING');
    throw new RetryLater(`CheckResult for ${sessionId} is still pending`);
  }
  if (outcome) return outcome;
  if (session.passed !== null) return session.passed === 'Y' ? 'passed' : 'failed';

  // A session past its expiry, every transaction still in progress and none with a callback.
  if (await sessions.expirePending(sessionId)) {
    await deps.notify(sessionId);
    log.info({ sessionId }, 'expired without a callback or a result');
    return 'expired';
  }
  // A callback came while CheckResult ran (the session is verifying now): this "P" predates it,
  // and the callback queued no CheckResult of its own beside this job (sendOnce). Ask again, even
  // on the last attempt: were this job to fail for good, the sweep requeues a session stuck verifying.
  throw new RetryLater(`${sessionId} got its callback while CheckResult ran: asking again`);
}

/**
 * Records one transaction's verdict; returns the session's outcome when this verdict settled it,
 * undefined when the session had one already (this one is recorded and logged, not applied).
 */
async function record(
  deps: CheckDeps,
  session: Session,
  transaction: Transaction,
  result: CheckResultResult & { passed: 'Y' | 'N' },
): Promise<CheckOutcome | undefined> {
  const { config, sessions, log } = deps;
  const details = config.KYC_STORE_RESULT_DETAILS ? deps.sealer.seal(detailsText(result), session.id) : null;
  const { settled } = await sessions.recordResult(session.id, transaction.seq, {
    transactionId: transaction.transactionId!,
    passed: result.passed,
    subCode: result.subCode ?? null,
    details,
  });
  if (settled) await deps.notify(session.id);
  const fields = {
    sessionId: session.id,
    attempt: transaction.seq,
    passed: result.passed,
    subCode: result.subCode,
    callbackPassed: transaction.callbackPassed,
    upstreamRequestId: result.requestId,
  };
  if (!settled) {
    log.warn(fields, 'a later transaction of a decided session has its result: recorded, not applied');
    return undefined;
  }
  const hintDisagrees = transaction.callbackPassed !== null && transaction.callbackPassed !== result.passed;
  log[hintDisagrees ? 'warn' : 'info'](fields, hintDisagrees ? 'CheckResult contradicts the callback: CheckResult wins' : 'verification result recorded');
  return result.passed === 'Y' ? 'passed' : 'failed';
}
