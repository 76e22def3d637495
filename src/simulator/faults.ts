/** Scripted failures: the next N calls of an action answer a chosen error (or hang first). */
import { ApiError, errorReply, type ApiReply } from './protocol.js';

/** Answer a body that is not JSON (the client then throws a SyntaxError). */
export const NON_JSON = 'NON_JSON';
/** Drop the connection without answering. */
export const CONNECTION_RESET = 'CONNECTION_RESET';
/** Process the call normally (useful with delayMs: the work is done, the answer comes late). */
export const SUCCESS = 'Success';

export interface FaultSpec {
  /** Action name, or "*" for any action. */
  action: string;
  status: number;
  code: string;
  message?: string;
  count: number;
  delayMs: number;
  /** For Throttling.* codes: the x-acs-retry-after header (ms). */
  retryAfterMs?: number;
}

export type Fault = Omit<FaultSpec, 'count'>;

export class FaultQueue {
  private specs: FaultSpec[] = [];

  add(spec: FaultSpec): void {
    this.specs.push({ ...spec });
  }

  /** Consumes one occurrence of the first fault that matches the action. */
  take(action: string): Fault | undefined {
    const index = this.specs.findIndex((s) => s.action === action || s.action === '*');
    const spec = this.specs[index];
    if (!spec) return undefined;
    spec.count -= 1;
    if (spec.count <= 0) this.specs.splice(index, 1);
    const { count: _count, ...fault } = spec;
    return fault;
  }

  list(): readonly FaultSpec[] {
    return this.specs;
  }

  clear(): void {
    this.specs = [];
  }
}

/** The reply for a fault, or null when the connection is to be dropped. */
export function faultReply(fault: Fault, requestId: string): ApiReply | null {
  if (fault.code === CONNECTION_RESET) return null;
  if (fault.code === NON_JSON) {
    return {
      status: fault.status,
      code: NON_JSON,
      headers: { 'content-type': 'text/html;charset=utf-8' },
      body: `<html><body><h1>${fault.status} Simulated upstream failure</h1></body></html>`,
    };
  }
  const headers: Record<string, string> = {};
  if (fault.code.includes('Throttling')) headers['x-acs-retry-after'] = String(fault.retryAfterMs ?? 1000);
  const error = new ApiError(fault.status, fault.code, fault.message ?? `Simulated fault: ${fault.code}`, headers);
  return errorReply(requestId, error);
}
