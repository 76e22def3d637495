import { createHmac, timingSafeEqual } from 'node:crypto';
import { namedSecrets } from '../config/named-secrets.js';
import type { Config } from '../config/schema.js';

export const SIGNATURE_HEADER = 'x-kyc-signature';
export const EVENT_ID_HEADER = 'x-kyc-event-id';

/** How long one delivery may take, answer included, before it is abandoned (and retried). */
export const WEBHOOK_TIMEOUT_MS = 5000;

/** The secrets events are signed with, in order: MERCHANT_WEBHOOK_SECRET, or MERCHANT_WEBHOOK_SECRETS. */
export function webhookSecrets(config: Pick<Config, 'MERCHANT_WEBHOOK_SECRET' | 'MERCHANT_WEBHOOK_SECRETS'>): string[] {
  return config.MERCHANT_WEBHOOK_SECRET ? [config.MERCHANT_WEBHOOK_SECRET] : namedSecrets(config.MERCHANT_WEBHOOK_SECRETS).map((s) => s.secret);
}

const hmac = (secret: string, timestamp: number, body: string) => createHmac('sha256', secret).update(`${timestamp}.${body}`, 'utf8').digest('hex');

/**
 * `t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`, one `v1=` per secret: the timestamp
 * is signed with the body, and a receiver holding any one of the secrets verifies it (rotation).
 */
export function signWebhook(secrets: string | readonly string[], body: string, timestamp = Math.floor(Date.now() / 1000)): string {
  return [`t=${timestamp}`, ...[secrets].flat().map((secret) => `v1=${hmac(secret, timestamp, body)}`)].join(',');
}

/**
 * What a receiver runs: one of the header's signatures must match one of its secrets, and the
 * timestamp must be recent (replays of old deliveries fail). Give both secrets while rotating.
 * Exported so merchants' own code and our tests verify exactly what we sign.
 */
export function verifyWebhook(secrets: string | readonly string[], header: string, body: string, toleranceSeconds = 300, now = Date.now()): boolean {
  const parts = header.split(',').map((p) => [p.slice(0, p.indexOf('=')), p.slice(p.indexOf('=') + 1)] as const);
  const t = Number(parts.find(([k]) => k === 't')?.[1]);
  if (!Number.isInteger(t) || Math.abs(now / 1000 - t) > toleranceSeconds) return false;
  const presented = parts.filter(([k, v]) => k === 'v1' && /^[0-9a-f]{64}$/.test(v)).map(([, v]) => Buffer.from(v, 'hex'));
  let ok = false;
  for (const secret of [secrets].flat()) {
    const expected = Buffer.from(hmac(secret, t, body), 'hex');
    for (const p of presented) if (timingSafeEqual(p, expected)) ok = true;
  }
  return ok;
}

/** What one delivery attempt found: the receiver's status, or why there was none. */
export interface DeliveryResult {
  ok: boolean;
  httpStatus: number | null;
  /** Why no answer came (TimeoutError, ECONNREFUSED…); never a URL. */
  error: string | null;
  latencyMs: number;
}

/** One POST of an event's body to the merchant's endpoint; a 2xx delivers it. Never throws. */
export async function postEvent(url: string, secrets: readonly string[], eventId: string, body: string, timeoutMs = WEBHOOK_TIMEOUT_MS): Promise<DeliveryResult> {
  const startedAt = performance.now();
  const latencyMs = () => Math.round(performance.now() - startedAt);
  try {
    const res = await fetch(url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'user-agent': 'kyc-gateway',
        [EVENT_ID_HEADER]: eventId,
        [SIGNATURE_HEADER]: signWebhook(secrets, body),
      },
      body,
      signal: AbortSignal.timeout(timeoutMs),
    });
    await res.arrayBuffer();
    return { ok: res.ok, httpStatus: res.status, error: null, latencyMs: latencyMs() };
  } catch (err) {
    return { ok: false, httpStatus: null, error: failureOf(err), latencyMs: latencyMs() };
  }
}

/** A short, URL-free reason: the socket's code (ECONNREFUSED…) or the error's name (TimeoutError…). */
function failureOf(err: unknown): string {
  const e = err as { name?: unknown; code?: unknown; cause?: { code?: unknown; name?: unknown } };
  const code = e.cause?.code ?? e.code;
  if (typeof code === 'string' && /^[A-Z0-9_]{1,40}$/.test(code)) return code;
  return typeof e.name === 'string' && /^\w{1,40}$/.test(e.name) ? e.name : 'Error';
}
