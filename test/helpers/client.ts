import type { Stack } from './stack.js';
import { META_INFO } from './stack.js';

export interface JsonResponse<T = Record<string, unknown>> {
  status: number;
  headers: Headers;
  body: T;
}

async function json<T = Record<string, unknown>>(res: Response): Promise<JsonResponse<T>> {
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: (text ? JSON.parse(text) : {}) as T };
}

/** A user's POST of a JSON body (a string is sent as it is) to the service. */
function postAsUser(url: string, token: string | undefined, body: unknown, headers: Record<string, string> = {}) {
  return fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}), ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  }).then((r) => json(r));
}

/** The service's API and the simulator's control API, over real HTTP. */
export function clientFor(stack: Stack) {
  const { appUrl, simUrl } = stack;
  return {
    start(token: string | undefined, body: unknown = { metaInfo: META_INFO }, headers: Record<string, string> = {}) {
      return postAsUser(`${appUrl}/kyc/start`, token, body, headers);
    },
    resume(token: string | undefined, merchantBizId: string, body: unknown = { metaInfo: META_INFO }) {
      return postAsUser(`${appUrl}/kyc/sessions/${merchantBizId}/resume`, token, body);
    },
    session(token: string | undefined, merchantBizId: string) {
      return fetch(`${appUrl}/kyc/sessions/${merchantBizId}`, {
        headers: token ? { authorization: `Bearer ${token}` } : {},
      }).then((r) => json(r));
    },
    callback(query: Record<string, string>) {
      return fetch(`${appUrl}/kyc/callback?${new URLSearchParams(query)}`).then((r) => json(r));
    },
    sim: {
      transaction(id: string) {
        return fetch(`${simUrl}/__sim/transactions/${id}`).then((r) => json<SimTransaction>(r));
      },
      complete(id: string, passed: 'Y' | 'N', subCode?: string) {
        return fetch(`${simUrl}/__sim/transactions/${id}/complete`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ passed, ...(subCode ? { subCode } : {}) }),
        }).then((r) => json<{ delivery: { status?: number; url: string } }>(r));
      },
      redeliver(id: string) {
        return fetch(`${simUrl}/__sim/transactions/${id}/redeliver`, { method: 'POST' }).then((r) =>
          json<{ delivery: { status?: number } }>(r),
        );
      },
      fault(spec: { action: string; status?: number; code: string; message?: string; count?: number; delayMs?: number; retryAfterMs?: number }) {
        return fetch(`${simUrl}/__sim/faults`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(spec),
        }).then((r) => json(r));
      },
      calls() {
        return fetch(`${simUrl}/__sim/calls`).then((r) => json<Array<{ action: string; code?: string }>>(r));
      },
    },
  };
}

export interface SimTransaction {
  transactionId: string;
  merchantBizId: string;
  merchantUserId: string;
  callbackUrl?: string;
  callbackToken?: string;
  params: Record<string, string>;
  deliveries: Array<{ url: string; status?: number }>;
}
