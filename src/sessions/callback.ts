import type { FastifyBaseLogger } from 'fastify';
import { HttpError } from '../errors/http-error.js';
import { callbackTokenMatches } from './callback-token.js';
import type { SessionRepository, TransactionOfSession } from './repository.js';

export interface CallbackInput {
  transactionId: string;
  passed: 'Y' | 'N';
  subCode: string | undefined;
  callbackToken: string;
  /**
   * Carried in our CallbackUrl (with `attempt`), so a transaction whose TransactionId was never
   * stored is still found.
   */
  sessionId: string | undefined;
  attempt: number | undefined;
}

/** ignored: for an erased session (a tombstone): answered 200 so Alibaba stops, and nothing changes. */
export type CallbackResult = 'recorded' | 'duplicate' | 'ignored';

/** Compared against when no transaction matches, so a miss costs what a hit costs. */
const NO_TRANSACTION_HASH = '0'.repeat(64);

export const rejectedCallback = () =>
  new HttpError(403, 'CALLBACK_REJECTED', 'Unknown transaction or invalid callback token');

export interface CallbackDeps {
  sessions: SessionRepository;
  log: FastifyBaseLogger;
  /** Queues the CheckResult that decides the session (durably: it survives a restart). */
  requestCheck: (sessionId: string) => Promise<void>;
  /** Sends the events the session's change recorded (the `verifying` event). */
  notify: (sessionId: string) => Promise<void>;
}

/**
 * GET /kyc/callback: Alibaba reports a finished transaction. The transaction's own token proves
 * the call is Alibaba's for this transaction. Its first valid callback is recorded and never
 * changed, but its `passed` is only a hint delivered over an unauthenticated GET: the session moves
 * to `verifying` and CheckResult decides (for this transaction: the first transaction decided
 * settles the session; a later one is recorded, not applied).
 */
export async function acceptCallback(deps: CallbackDeps, input: CallbackInput): Promise<CallbackResult> {
  const { sessions, log } = deps;
  const transaction = await findTransaction(sessions, input);
  const ignored = (sessionId: string): CallbackResult => {
    log.info({ sessionId }, 'callback for an erased session: ignored');
    return 'ignored';
  };
  // Only an erasure removes a token's hash (the token itself was this service's: see the route).
  if (transaction && transaction.callbackTokenHash === null) return ignored(transaction.sessionId);
  const tokenOk = callbackTokenMatches(input.callbackToken, transaction?.callbackTokenHash ?? NO_TRANSACTION_HASH);
  if (!transaction || !tokenOk) {
    log.warn({ found: Boolean(transaction) }, 'callback rejected');
    throw rejectedCallback();
  }

  const { sessionId, seq } = transaction;
  // An erasure was asked for (its job has not run yet): nothing may revive the session.
  const erasing = async () => ((await sessions.findById(sessionId))?.erasureRequestedAt ?? null) !== null;
  if (transaction.session.erasureRequestedAt !== null) return ignored(sessionId);
  const subCode = input.subCode ?? null;
  if (transaction.callbackPassed === null) {
    const recorded = await sessions.recordCallback(sessionId, seq, { transactionId: input.transactionId, passed: input.passed, subCode });
    if (recorded) {
      log.info({ sessionId, attempt: seq, callbackPassed: input.passed, subCode }, 'callback accepted; verifying with CheckResult');
      await deps.requestCheck(sessionId);
      await deps.notify(sessionId);
      return 'recorded';
    }
    // Not recorded: a concurrent delivery was first, or the erasure came in between.
    if (await erasing()) return ignored(sessionId);
  }

  // Recorded earlier, or just now by a concurrent delivery (then read what that one wrote).
  const current = transaction.callbackPassed === null ? ((await sessions.findTransaction(sessionId, seq)) ?? transaction) : transaction;
  if (current.callbackPassed === input.passed && current.callbackSubCode === subCode && current.transactionId === input.transactionId) {
    return 'duplicate';
  }
  log.warn(
    {
      sessionId,
      attempt: seq,
      recorded: { passed: current.callbackPassed, subCode: current.callbackSubCode },
      presented: { passed: input.passed, subCode },
      event: 'callback_tamper',
    },
    'callback contradicts the recorded outcome: refused',
  );
  throw new HttpError(409, 'CALLBACK_CONFLICT', 'An outcome is already recorded for this transaction');
}

async function findTransaction(sessions: SessionRepository, input: CallbackInput): Promise<TransactionOfSession | null> {
  // The route refuses tokens this service never made before calling here (CallbackTokens.isGenuine),
  // so how long this takes tells a forger nothing; the stored hash stays the check that counts.
  const byId = await sessions.findTransactionById(input.transactionId);
  if (byId || !input.sessionId || input.attempt === undefined) return byId;
  // Only a transaction that never stored its TransactionId may be matched this way.
  const byAttempt = await sessions.findTransaction(input.sessionId, input.attempt);
  return byAttempt && byAttempt.transactionId === null ? byAttempt : null;
}
