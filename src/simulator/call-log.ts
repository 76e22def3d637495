/** Record of every API call the simulator received (no parameters, no secrets). */
import { BoundedLog } from './bounded-log.js';

export interface ApiCallRecord {
  requestId: string;
  /** Epoch ms with sub-ms precision (performance.timeOrigin + performance.now()). */
  arrivedAt: number;
  finishedAt?: number;
  action: string;
  /** The access key id the caller claimed (may be unknown to the simulator). */
  accessKeyId?: string;
  /** The account of that key, once the call passed authentication. */
  account?: string;
  status?: number;
  /** Alibaba Code answered ("Success", "Throttling.Api", ...); undefined while in flight. */
  code?: string;
}

/** Every API call, up to the last 100,000. */
export class CallLog extends BoundedLog<ApiCallRecord> {
  constructor() {
    super(100_000);
  }
}

export function monotonicEpochMs(): number {
  return performance.timeOrigin + performance.now();
}
