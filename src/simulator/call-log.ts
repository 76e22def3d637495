/** Record of every API call the simulator received (no parameters, no secrets). */

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

export class CallLog {
  private records: ApiCallRecord[] = [];

  constructor(private readonly maxRecords = 100_000) {}

  start(record: ApiCallRecord): ApiCallRecord {
    this.records.push(record);
    if (this.records.length > this.maxRecords) this.records.shift();
    return record;
  }

  list(): readonly ApiCallRecord[] {
    return this.records;
  }

  clear(): void {
    this.records = [];
  }
}

export function monotonicEpochMs(): number {
  return performance.timeOrigin + performance.now();
}
