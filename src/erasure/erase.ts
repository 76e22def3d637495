import type { FastifyBaseLogger } from 'fastify';
import { BudgetExhaustedError, BudgetUnavailableError } from '../budget/errors.js';
import { CloudAuthError } from '../cloudauth/errors.js';
import type { CloudAuthApi } from '../cloudauth/types.js';
import type { ErasureRepository } from './repository.js';

export interface EraseDeps {
  repository: ErasureRepository;
  cloudauth: CloudAuthApi;
  log: FastifyBaseLogger;
  /** Sends the events the erasure recorded (kyc.session.redacted). */
  notify: (sessionId: string) => Promise<void>;
  /** A transaction reserved after this may still have its Initialize running (longestStartMs). */
  inFlightSince: () => Date;
}

/** Thrown to have the job retried later (with backoff): a deletion at Alibaba failed for now. */
export class RetryErasure extends Error {
  override name = 'RetryErasure';
}

/**
 * complete / incomplete: finished (the event is recorded); deferred: a transaction may still be
 * completed by its user at Alibaba, or its Initialize may still be running: the erasure sweep runs
 * the job again later; skipped: no erasure was asked for.
 */
export type EraseOutcome = 'complete' | 'incomplete' | 'deferred' | 'skipped';

/**
 * Alibaba's transactions expire 30 minutes after issue; ours are stamped once Initialize answered,
 * slightly later. Past this margin over our stamp nobody can complete the transaction any more.
 */
export const UPSTREAM_EXPIRY_MARGIN_MS = 60_000;

/** What to record of a failed deletion: its Alibaba code or our budget's, never a message. */
function failureCode(err: unknown): string | undefined {
  if (err instanceof CloudAuthError) return err.upstreamCode.slice(0, 64);
  if (err instanceof BudgetExhaustedError || err instanceof BudgetUnavailableError) return err.code;
  return undefined;
}

/**
 * One run of a session's erasure (idempotent: every run redoes what is left). Removes the personal
 * data here, then asks Alibaba's DeleteVerifyResult (DeleteType=All, through the QPS budget) for
 * each transaction not asked successfully yet, and completes the erasure once each has a final
 * answer. A transaction without a callback that has not expired is asked once it has: its user
 * could still complete it, and a deletion asked now would find nothing and miss what follows.
 * Throttling, 5xx, timeouts and an exhausted budget throw, so the job retries with backoff; on the
 * last attempt those transactions are `failed` (a repeated DELETE asks again).
 */
export async function eraseSession(deps: EraseDeps, sessionId: string, opts: { lastAttempt: boolean }): Promise<EraseOutcome> {
  const { repository, log } = deps;
  if (!(await repository.redactLocally(sessionId, deps.inFlightSince()))) return 'skipped';

  const now = Date.now();
  let deferred = false;
  const failures: string[] = [];
  for (const t of await repository.pendingDeletions(sessionId)) {
    if (t.callbackPassed === null && t.expiresAt.getTime() + UPSTREAM_EXPIRY_MARGIN_MS > now) {
      deferred = true;
      continue;
    }
    try {
      const result = await deps.cloudauth.deleteVerifyResult({ TransactionId: t.transactionId, DeleteType: 'All' }, { log });
      // N: nothing (left) to delete: never completed, or deleted by an earlier call whose answer was lost.
      await repository.recordDeletion(sessionId, t.seq, result.deleteResult === 'Y' ? 'deleted' : 'absent', null);
    } catch (err) {
      const code = failureCode(err);
      if (code === undefined) throw err;
      if (err instanceof CloudAuthError && err.failure === 'rejected') {
        // Asking again would get the same answer (e.g. Alibaba no longer knows the transaction).
        await repository.recordDeletion(sessionId, t.seq, 'rejected', code);
        log.warn({ sessionId, attempt: t.seq, upstreamCode: code }, 'DeleteVerifyResult refused: not asked again');
        continue;
      }
      await repository.recordDeletion(sessionId, t.seq, opts.lastAttempt ? 'failed' : 'pending', code);
      failures.push(code);
    }
  }
  if (failures.length > 0 && !opts.lastAttempt) throw new RetryErasure(`DeleteVerifyResult failed (${failures.join(', ')}): retrying`);
  if (deferred) return 'deferred';

  const completed = await repository.complete(sessionId);
  if (!completed) return 'deferred';
  await deps.notify(sessionId);
  if (completed.incomplete > 0) {
    log.error({ sessionId, transactions: completed.incomplete }, 'erasure finished, but Alibaba did not delete every transaction: see the session');
    return 'incomplete';
  }
  log.info({ sessionId }, 'erasure complete');
  return 'complete';
}
