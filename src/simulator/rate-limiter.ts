/** Sliding-window limiter over admitted arrival times (what Alibaba's per-API QPS limit behaves like). */

export type Admission = { admitted: true } | { admitted: false; retryAfterMs: number };

export class SlidingWindowLimiter {
  private readonly admitted = new Map<string, number[]>();

  constructor(private readonly windowMs = 1000) {}

  /**
   * Admits the call arriving at `at` (ms) when fewer than `limit` calls of `key` were admitted
   * in the preceding window. A limit of 0 means unlimited.
   */
  tryAdmit(key: string, limit: number, at: number): Admission {
    if (limit <= 0) return { admitted: true };
    const times = this.admitted.get(key) ?? [];
    while (times.length > 0 && at - (times[0] as number) >= this.windowMs) times.shift();
    if (times.length < limit) {
      times.push(at);
      this.admitted.set(key, times);
      return { admitted: true };
    }
    const oldest = times[0] as number;
    return { admitted: false, retryAfterMs: Math.max(1, Math.ceil(oldest + this.windowMs - at)) };
  }

  reset(): void {
    this.admitted.clear();
  }
}
