/** Alibaba's result callback: `GET <CallbackUrl>` with transactionId, passed, subCode (and callbackToken). */
import type { Delivery, Transaction } from './store.js';

export const DEFAULT_CALLBACK_TIMEOUT_MS = 5000;

/**
 * Appends fields to a URL's query without re-encoding what is already there
 * (a merchant may have signed its own query). Any fragment is dropped.
 */
export function appendQuery(url: string, fields: ReadonlyArray<readonly [string, string]>): string {
  const base = url.split('#')[0] ?? '';
  const added = fields.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&');
  if (added === '') return base;
  if (!base.includes('?')) return `${base}?${added}`;
  return base.endsWith('?') || base.endsWith('&') ? `${base}${added}` : `${base}&${added}`;
}

/** The URL Alibaba would call for a completed transaction, or undefined when no callback applies. */
export function callbackUrlFor(transaction: Transaction): string | undefined {
  const { callbackUrl, outcome } = transaction;
  if (!callbackUrl || !outcome) return undefined;
  const fields: Array<[string, string]> = [
    ['transactionId', transaction.transactionId],
    ['passed', outcome.passed],
    ['subCode', outcome.subCode],
  ];
  if (transaction.callbackToken) fields.push(['callbackToken', transaction.callbackToken]);
  return appendQuery(callbackUrl, fields);
}

export async function deliverCallback(url: string, timeoutMs: number): Promise<Delivery> {
  const at = Date.now();
  const started = performance.now();
  try {
    const response = await fetch(url, {
      method: 'GET',
      redirect: 'manual',
      signal: AbortSignal.timeout(timeoutMs),
    });
    await response.arrayBuffer().catch(() => undefined);
    return { url, status: response.status, at, durationMs: performance.now() - started };
  } catch (error) {
    return { url, error: describe(error), at, durationMs: performance.now() - started };
  }
}

function describe(error: unknown): string {
  if (error instanceof Error) {
    const cause = (error as { cause?: { code?: string } }).cause;
    return cause?.code ? `${error.name}: ${cause.code}` : `${error.name}: ${error.message}`;
  }
  return String(error);
}
