import fp from 'fastify-plugin';
import { HttpError } from '../errors/http-error.js';
import { QpsBudget, type AcquireOptions } from './budget.js';
import { BudgetExhaustedError, BudgetUnavailableError } from './errors.js';
import { FixedWindowLimiter } from './fixed-window.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** The account's exclusive QPS budget, shared through Redis by every instance. */
    budget: {
      /** Refuses now (429, or 503 without Redis) when a call queued now would get no slot in time; reserves nothing. */
      check(api: string): Promise<void>;
      acquire(api: string, options?: AcquireOptions): Promise<void>;
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

export default fp(
  async (app) => {
    const { config } = app;
    const options = {
      redis: app.redis,
      keyPrefix: 'kyc:budget',
      account: config.CLOUDAUTH_ACCOUNT,
      limits: {
        Initialize: config.CLOUDAUTH_QPS_INITIALIZE ?? config.CLOUDAUTH_QPS,
        CheckResult: config.CLOUDAUTH_QPS_CHECKRESULT ?? config.CLOUDAUTH_QPS,
        DeleteVerifyResult: config.CLOUDAUTH_QPS_DELETEVERIFYRESULT ?? config.CLOUDAUTH_QPS,
      },
      maxWaitMs: config.CLOUDAUTH_BUDGET_WAIT_MS,
      marginMs: config.CLOUDAUTH_BUDGET_MARGIN_MS,
    };
    const budget =
      config.CLOUDAUTH_BUDGET_ALGORITHM === 'fixed-window' ? new FixedWindowLimiter(options) : new QpsBudget(options);
    app.decorate('budget', {
      check: async (api: string) => {
        try {
          await budget.check(api);
        } catch (err) {
          app.metrics.budgetRefused(api, err);
          throw budgetHttpError(err);
        }
      },
      acquire: async (api: string, options?: AcquireOptions) => {
        try {
          await app.metrics.budgetAcquire(api, () => budget.acquire(api, options));
        } catch (err) {
          throw budgetHttpError(err);
        }
      },
    });
  },
  { name: 'budget', dependencies: ['config', 'redis', 'metrics'] },
);
