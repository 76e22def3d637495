import type { RedisClient } from '../redis/client.js';
import fp from 'fastify-plugin';
import type { Config } from '../config/schema.js';
import { HttpError } from '../errors/http-error.js';
import { QpsBudget, type AcquireOptions, type Grant } from './budget.js';
import { BudgetExhaustedError, BudgetUnavailableError } from './errors.js';

/** What the service needs from a QPS limiter: QpsBudget, or a stand-in a benchmark injects. */
export interface Limiter {
  /** Refuses when a call queued now would get no slot in time; reserves nothing. */
  check(api: string): Promise<void>;
  /** Resolves when the call may start, having called `options.send` at that moment if given. */
  acquireSlot(api: string, options?: AcquireOptions): Promise<Grant>;
}

/** Makes the limiter in place of QpsBudget (buildApp's `budget` option; benchmarks only). */
export type LimiterFactory = (deps: { redis: RedisClient; config: Config }) => Limiter;

declare module 'fastify' {
  interface FastifyInstance {
    /** The account's exclusive QPS budget, shared through Redis by every instance. */
    budget: {
      /** Refuses now (429, or 503 without Redis) when a call queued now would get no slot in time; reserves nothing. */
      check(api: string): Promise<void>;
      acquire(api: string, options?: AcquireOptions): Promise<Grant>;
    };
  }
}

/** Budget failures as answers: no slot in time → 429, Redis unreachable → 503 (fail closed). */
export function budgetHttpError(err: unknown): unknown {
  if (err instanceof BudgetExhaustedError) {
    return new HttpError(429, 'QPS_BUDGET_EXHAUSTED', 'Too many verifications are being started; retry shortly', {
      'retry-after': String(Math.max(1, Math.ceil(err.retryAfterMs / 1000))),
    });
  }
  if (err instanceof BudgetUnavailableError) {
    return new HttpError(503, 'BUDGET_UNAVAILABLE', 'The verification service is temporarily unavailable', { 'retry-after': '1' });
  }
  return err;
}

export default fp<{ limiter?: LimiterFactory }>(
  async (app, opts) => {
    const { config, metrics } = app;
    let budget: Limiter;
    if (opts.limiter) {
      budget = opts.limiter({ redis: app.redis, config });
    } else {
      const qpsBudget = new QpsBudget({
        redis: app.redis,
        keyPrefix: 'kyc:budget',
        account: config.CLOUDAUTH_ACCOUNT,
        limits: {
          Initialize: config.CLOUDAUTH_QPS_INITIALIZE ?? config.CLOUDAUTH_QPS,
          CheckResult: config.CLOUDAUTH_QPS_CHECKRESULT ?? config.CLOUDAUTH_QPS,
          DeleteVerifyResult: config.CLOUDAUTH_QPS_DELETEVERIFYRESULT ?? config.CLOUDAUTH_QPS,
        },
        maxWaitMs: config.CLOUDAUTH_BUDGET_WAIT_MS,
        networkAllowanceMs: config.CLOUDAUTH_BUDGET_MARGIN_MS,
        dispatchDelay: { maxMs: config.CLOUDAUTH_BUDGET_MAX_DISPATCH_MS },
        onDispatch: (observation) => {
          metrics.budgetDispatch(observation);
          if (observation.outcome === 'late') {
            app.log.info({ api: observation.api, lateMs: Math.round(observation.delayMs * 10) / 10, marginMs: Math.round(observation.marginMs * 10) / 10 }, 'budget slot given back: woke later than promised');
          }
        },
      });
      metrics.setBudgetMargin(qpsBudget.marginMs());
      budget = qpsBudget;
    }
    app.decorate('budget', {
      check: async (api: string) => {
        try {
          await budget.check(api);
        } catch (err) {
          metrics.budgetRefused(api, err);
          throw budgetHttpError(err);
        }
      },
      acquire: async (api: string, options?: AcquireOptions) => {
        try {
          return await metrics.budgetAcquire(api, () => budget.acquireSlot(api, options));
        } catch (err) {
          throw budgetHttpError(err);
        }
      },
    });
  },
  { name: 'budget', dependencies: ['config', 'redis', 'metrics'] },
);
