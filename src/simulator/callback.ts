/** Alibaba's result callback: `GET <CallbackUrl>` with transactionId, passed, subCode (and callbackToken). */
import type { Delivery, Transaction } from './store.js';

export const DEFAULT_CALLBACK_TIMEOUT_MS = 5000;

/**
 * How the callback spells the fields it adds. Alibaba's own material spells them both ways: the
 * Initialize doc lists `transactionId`, `passed`, `subcode` and says "the CallbackToken field" is
 * added, while its example URL reads `?callbackToken=…&transactionId=…&passed=Y&subCode=200`.
 * - camel: the example URL's spelling (transactionId, passed, subCode, callbackToken);
 * - pascal: the API's parameter style (TransactionId, Passed, SubCode, CallbackToken);
 * - docs: the mix the Initialize doc's text shows (transactionId, passed, subcode, CallbackToken).
 */
export const CALLBACK_SPELLINGS = {
  camel: { transactionId: 'transactionId', passed: 'passed', subCode: 'subCode', callbackToken: 'callbackToken' },
  pascal: { transactionId: 'TransactionId', passed: 'Passed', subCode: 'SubCode', callbackToken: 'CallbackToken' },
  docs: { transactionId: 'transactionId', passed: 'passed', subCode: 'subcode', callbackToken: 'CallbackToken' },
} as const;

export type CallbackSpelling = keyof typeof CALLBACK_SPELLINGS;
export const CALLBACK_SPELLING_NAMES = Object.keys(CALLBACK_SPELLINGS) as [CallbackSpelling, ...CallbackSpelling[]];

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
export function callbackUrlFor(transaction: Transaction, spelling: CallbackSpelling): string | undefined {
  const { callbackUrl, outcome } = transaction;
  if (!callbackUrl || !outcome) return undefined;
  const names = CALLBACK_SPELLINGS[spelling];
  const fields: Array<[string, string]> = [
    [names.transactionId, transaction.transactionId],
    [names.passed, outcome.passed],
    [names.subCode, outcome.subCode],
  ];
  if (transaction.callbackToken) fields.push([names.callbackToken, transaction.callbackToken]);
  return appendQuery(callbackUrl, fields);
}

/**
 * One `GET url` as Alibaba sends it: no redirects followed, the body drained, bounded by
 * `timeoutMs`. Never throws: a failure is recorded in `error`.
 */
export async function getOnce(url: string, timeoutMs: number): Promise<Delivery> {
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
