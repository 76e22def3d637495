import type { FastifyBaseLogger } from 'fastify';
import { HttpError } from '../errors/http-error.js';
import { callbackTokenMatches } from './callback-token.js';
import type { Session, SessionRepository } from './repository.js';

export interface CallbackInput {
  transactionId: string;
  passed: 'Y' | 'N';
  subCode: string | undefined;
  callbackToken: string;
  /** Carried in our CallbackUrl, so a session whose TransactionId was never stored is still found. */
  merchantBizId: string | undefined;
}

export type CallbackResult = 'recorded' | 'duplicate';

/** Compared against when no session matches, so a miss costs what a hit costs. */
const NO_SESSION_HASH = '0'.repeat(64);

export const rejectedCallback = () =>
  new HttpError(403, 'CALLBACK_REJECTED', 'Unknown transaction or invalid callback token');

/**
 * GET /kyc/callback: Alibaba reports a finished verification. The per-transaction token proves the
 * call is Alibaba's for this transaction. The first valid callback is recorded and never changed,
 * but its `passed` is only a hint delivered over an unauthenticated GET: the session moves to
 * `verifying` and CheckResult decides.
 */
export interface CallbackDeps {
  sessions: SessionRepository;
  log: FastifyBaseLogger;
  /** Queues the CheckResult that decides the outcome (durably: it survives a restart). */
  requestCheck: (merchantBizId: string) => Promise<void>;
}

export async function acceptCallback(deps: CallbackDeps, input: CallbackInput): Promise<CallbackResult> {
  const { sessions, log } = deps;
  const session = await findSession(sessions, input);
  const tokenOk = callbackTokenMatches(input.callbackToken, session?.callbackTokenHash ?? NO_SESSION_HASH);
  if (!session || !tokenOk) {
    log.warn({ found: Boolean(session) }, 'callback rejected');
    throw rejectedCallback();
  }

  const subCode = input.subCode ?? null;
  if (session.callbackPassed === null) {
    const recorded = await sessions.recordCallback(session.merchantBizId, {
      transactionId: input.transactionId,
      passed: input.passed,
      subCode,
    });
    if (recorded) {
      log.info({ merchantBizId: session.merchantBizId, callbackPassed: input.passed, subCode }, 'callback accepted; verifying with CheckResult');
      await deps.requestCheck(session.merchantBizId);
      return 'recorded';
    }
  }

  // Recorded earlier, or just now by a concurrent delivery (then read what that one wrote).
  const current = session.callbackPassed === null ? ((await sessions.findByMerchantBizId(session.merchantBizId)) ?? session) : session;
  if (current.callbackPassed === input.passed && current.callbackSubCode === subCode && current.transactionId === input.transactionId) {
    return 'duplicate';
  }
  log.warn(
    {
      merchantBizId: session.merchantBizId,
      recorded: { passed: current.callbackPassed, subCode: current.callbackSubCode },
      presented: { passed: input.passed, subCode },
      event: 'callback_tamper',
    },
    'callback contradicts the recorded outcome: refused',
  );
  throw new HttpError(409, 'CALLBACK_CONFLICT', 'An outcome is already recorded for this transaction');
}

async function findSession(sessions: SessionRepository, input: CallbackInput): Promise<Session | null> {
  // The route refuses tokens this service never made before calling here (CallbackTokens.isGenuine),
  // so how long this takes tells a forger nothing; the stored hash stays the check that counts.
  const byTransaction = await sessions.findByTransactionId(input.transactionId);
  if (byTransaction || !input.merchantBizId) return byTransaction;
  // Only a session that never stored its TransactionId may be matched this way.
  const byBizId = await sessions.findByMerchantBizId(input.merchantBizId);
  return byBizId && byBizId.transactionId === null ? byBizId : null;
}
