/**
 * COMPARISON BASELINE ONLY — never part of the service.
 *
 * The naive fixed-window limiter (INCR + PEXPIRE on a per-second key, bucketed by the local clock)
 * that QpsBudget replaces. It lets up to 2N calls start within one real second (N at the end of a
 * bucket, N at the start of the next), trusts each instance's clock, counts rejected attempts and
 * polls. `npm run bench:budget` runs the service with it (bench/lib/baseline-service.ts injects it
 * through buildApp) to show the difference.
 */
import type { RedisClient } from '../../src/redis/client.js';
import type { AcquireOptions, Grant } from '../../src/budget/budget.js';
import { BudgetExhaustedError, BudgetUnavailableError } from '../../src/budget/errors.js';
import type { Limiter } from '../../src/budget/plugin.js';
import { sleep } from '../../src/budget/timing.js';

export interface FixedWindowOptions {
  redis: RedisClient;
  keyPrefix: string;
  account: string;
  limits: Record<string, number> | number;
  maxWaitMs: number;
}

export class FixedWindowLimiter implements Limiter {
  constructor(private readonly opts: FixedWindowOptions) {}

  /** The baseline has no queue to look at: every caller tries. */
  async check(): Promise<void> {}

  async acquire(api: string, acquireOpts: AcquireOptions = {}): Promise<void> {
    await this.acquireSlot(api, acquireOpts);
  }

  async acquireSlot(api: string, acquireOpts: AcquireOptions = {}): Promise<Grant> {
    const { signal } = acquireOpts;
    const maxWaitMs = acquireOpts.maxWaitMs ?? this.opts.maxWaitMs;
    const limits = this.opts.limits;
    const limit = typeof limits === 'number' ? limits : limits[api];
    if (limit === undefined) throw new TypeError(`no QPS limit configured for API "${api}"`);
    const started = Date.now();
    for (let attempt = 1; ; attempt++) {
      signal?.throwIfAborted();
      const now = Date.now();
      const bucket = Math.floor(now / 1000);
      const key = `${this.opts.keyPrefix}:${this.opts.account}:${api}:${bucket}`;
      let count: number;
      try {
        const res = await this.opts.redis.multi().incr(key).pexpire(key, 2000).exec();
        count = Number(res?.[0]?.[1]);
      } catch (err) {
        throw new BudgetUnavailableError('fixed-window limiter: Redis unavailable', { cause: err });
      }
      if (count <= limit) {
        acquireOpts.send?.().catch(() => {});
        return { api, attempts: attempt, slotAtMs: Date.now(), delayMs: Date.now() - started, marginMs: 0, latenessMs: 0 };
      }
      const untilNext = (bucket + 1) * 1000 - Date.now();
      if (Date.now() - started + untilNext > maxWaitMs) {
        throw new BudgetExhaustedError(api, Math.max(1, untilNext));
      }
      await sleep(Math.max(untilNext, 0), signal);
    }
  }
}
