/**
 * The CallbackUrl reachability check. Alibaba's Initialize doc: the CallbackUrl "is checked for
 * accessibility before the API operation is called. If the provided address cannot be accessed
 * from the Internet, a 400 error is returned." The doc names no method or answer, so the simulator
 * sends `GET <CallbackUrl>` exactly as registered (no result fields added, redirects not followed)
 * and counts only a 2xx within the timeout as accessible.
 */
import { BoundedLog } from './bounded-log.js';
import { getOnce } from './callback.js';
import type { Delivery } from './store.js';

export const PROBE_TIMEOUT_MS = 3000;

export interface ProbeRecord extends Delivery {
  /** A 2xx answer within the timeout. */
  ok: boolean;
}

export async function probeCallbackUrl(url: string, timeoutMs = PROBE_TIMEOUT_MS): Promise<ProbeRecord> {
  const result = await getOnce(url, timeoutMs);
  const ok = result.status !== undefined && result.status >= 200 && result.status < 300;
  return { ...result, ok };
}

/** Why a probe failed, in words for the InvalidParameter message. */
export function probeFailure(probe: ProbeRecord): string {
  if (probe.status !== undefined) return `GET answered HTTP ${probe.status}`;
  return /TimeoutError/.test(probe.error ?? '') ? 'GET timed out' : `GET failed (${probe.error ?? 'unknown error'})`;
}

/** Every probe the simulator sent, up to the last 10,000 (for tests: `/__sim/probes`). */
export class ProbeLog extends BoundedLog<ProbeRecord> {
  constructor() {
    super(10_000);
  }
}
