import type { FastifyBaseLogger } from 'fastify';
import type { Config } from '../config/schema.js';
import { CloudAuthError } from '../cloudauth/errors.js';
import type { CloudAuthApi } from '../cloudauth/types.js';
import type { SessionRepository } from '../sessions/repository.js';
import type { DetailsCipher } from './details-cipher.js';

export interface CheckDeps {
  config: Config;
  sessions: SessionRepository;
  cloudauth: CloudAuthApi;
  cipher: DetailsCipher;
  log: FastifyBaseLogger;
  /** Queues the merchant event for the session's final state (before the state is written: at least once). */
  notify: (merchantBizId: string) => Promise<void>;
}

/** Thrown to have the job retried later (with backoff). */
export class RetryLater extends Error {
  override name = 'RetryLater';
}

export type CheckOutcome = 'passed' | 'failed' | 'expired' | 'error' | 'skipped';

/**
 * Asks CheckResult for a session's verdict and records it: only CheckResult decides `passed` or
 * `failed`. Passed "P" (still running) is retried; a session past its expiry that never had a
 * callback and still has no result is `expired` (unless the callback comes while CheckResult runs:
 * then CheckResult is asked again). Throttling, 5xx, timeouts and an exhausted
 * budget throw, so the job retries with backoff; on the last attempt the session becomes `error`.
 */
export async function checkSession(deps: CheckDeps, merchantBizId: string, opts: { lastAttempt: boolean }): Promise<CheckOutcome> {
  const { config, sessions, log } = deps;
  const session = await sessions.findByMerchantBizId(merchantBizId);
  if (!session?.transactionId || (session.status !== 'verifying' && session.status !== 'pending')) return 'skipped';

  const giveUp = async (errorCode: string): Promise<CheckOutcome> => {
    await deps.notify(merchantBizId);
    await sessions.markUnresolved(merchantBizId, errorCode);
    log.warn({ merchantBizId, errorCode }, 'CheckResult gave no verdict: session is error');
    return 'error';
  };

  let result;
  try {
    result = await deps.cloudauth.checkResult(
      { MerchantBizId: merchantBizId, TransactionId: session.transactionId, IsReturnImage: config.KYC_CHECKRESULT_RETURN_IMAGE },
      { log },
    );
  } catch (err) {
    if (err instanceof CloudAuthError && err.failure === 'rejected') return giveUp('CHECK_RESULT_REJECTED');
    if (opts.lastAttempt) return giveUp('CHECK_RESULT_UNAVAILABLE');
    throw err;
  }

  if (result.passed === 'Y' || result.passed === 'N') {
    const details = config.KYC_STORE_RESULT_DETAILS
      ? deps.cipher.seal(
          JSON.stringify({
            extBasicInfo: result.extBasicInfo ?? null,
            extIdInfo: result.extIdInfo ?? null,
            extFaceInfo: result.extFaceInfo ?? null,
            extRiskInfo: result.extRiskInfo ?? null,
          }),
          merchantBizId,
        )
      : null;
    await deps.notify(merchantBizId);
    const recorded = await sessions.recordResult(merchantBizId, { passed: result.passed, subCode: result.subCode ?? null, details });
    if (recorded) {
      const hintDisagrees = session.callbackPassed !== null && session.callbackPassed !== result.passed;
      log[hintDisagrees ? 'warn' : 'info'](
        { merchantBizId, passed: result.passed, subCode: result.subCode, callbackPassed: session.callbackPassed, upstreamRequestId: result.requestId },
        hintDisagrees ? 'CheckResult contradicts the callback: CheckResult wins' : 'verification result recorded',
      );
    }
    return result.passed === 'Y' ? 'passed' : 'failed';
  }

  // Still in progress ("P").
  if (session.status === 'pending' && session.callbackPassed === null && session.expiresAt.getTime() <= Date.now()) {
    await deps.notify(merchantBizId);
    if (await sessions.expirePending(merchantBizId)) {
      log.info({ merchantBizId }, 'expired without a callback or a result');
      return 'expired';
    }
    // The callback came while CheckResult ran (the session is verifying now): this "P" predates it,
    // and the callback queued no CheckResult of its own beside this job (sendOnce). Ask again, even
    // on the last attempt: were this job to fail for good, the sweep requeues a session stuck verifying.
    throw new RetryLater(`${merchantBizId} got its callback while CheckResult ran: asking again`);
  }
  if (opts.lastAttempt) return giveUp('CHECK_RESULT_PENDING');
  throw new RetryLater(`CheckResult for ${merchantBizId} is still pending`);
}
