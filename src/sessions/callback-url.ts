/** The query parameters this service puts in the CallbackUrl it registers with Alibaba (not Alibaba's fields). */
export const CALLBACK_SESSION_PARAM = 'sessionId';
export const CALLBACK_ATTEMPT_PARAM = 'attempt';

/**
 * The CallbackUrl registered for one transaction: the session id and the attempt, so that a
 * transaction whose TransactionId was never stored (the database was away when Initialize answered)
 * is still found. Alibaba probes this URL as it is (no result fields) before Initialize.
 */
export function callbackUrlFor(publicBaseUrl: string, sessionId: string, seq: number): string {
  const url = new URL(`${publicBaseUrl}/kyc/callback`);
  url.searchParams.set(CALLBACK_SESSION_PARAM, sessionId);
  url.searchParams.set(CALLBACK_ATTEMPT_PARAM, String(seq));
  return url.toString();
}
