/** Finishing a verification (from the user page or the control API) and notifying the merchant. */
import { callbackUrlFor, getOnce, type CallbackSpelling } from './callback.js';
import { defaultSubCode } from './results.js';
import type { CompletionResult, Delivery, Passed, Transaction, TransactionStore } from './store.js';

export interface CompletionDeps {
  store: TransactionStore;
  callbackTimeoutMs: number;
  /** How the callback spells the fields it adds. */
  callbackSpelling: CallbackSpelling;
}

export type CompletionOutcome =
  | { ok: true; transaction: Transaction; delivery: Delivery | null }
  | Extract<CompletionResult, { ok: false }>;

export async function completeAndNotify(
  deps: CompletionDeps,
  transactionId: string,
  passed: Passed,
  subCode?: string,
): Promise<CompletionOutcome> {
  const result = deps.store.complete(transactionId, passed, subCode ?? defaultSubCode(passed));
  if (!result.ok) return result;
  const delivery = await notify(deps, result.transaction);
  return { ok: true, transaction: result.transaction, delivery };
}

/** Fires the callback of a completed transaction (again); null when it has no CallbackUrl. */
export async function notify(deps: CompletionDeps, transaction: Transaction): Promise<Delivery | null> {
  const url = callbackUrlFor(transaction, deps.callbackSpelling);
  if (!url) return null;
  const delivery = await getOnce(url, deps.callbackTimeoutMs);
  transaction.deliveries.push(delivery);
  return delivery;
}
