import { setTimeout as sleep } from 'node:timers/promises';
import fp from 'fastify-plugin';
import { createCloudAuthClient } from './client.js';
import { CloudAuthError } from './errors.js';
import type { ApiName, CallOptions, CloudAuthApi } from './types.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** cloudauth-intl, metered: every call first takes a slot from the shared QPS budget. */
    cloudauth: CloudAuthApi;
  }
}

/** Attempts of one call when Alibaba answers Throttling.* (another system shares the account). */
export const MAX_THROTTLED_ATTEMPTS = 4;
const BACKOFF_BASE_MS = 200;
const BACKOFF_CAP_MS = 2000;
/** A duration in ms rounded to 0.1 ms, for logs. */
const tenths = (ms: number) => Math.round(ms * 10) / 10;

/** Exponential backoff with full jitter, never shorter than what Alibaba asked for. */
export function throttleDelayMs(attempt: number, retryAfterMs: number | undefined): number {
  const backoff = Math.random() * Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** (attempt - 1));
  return Math.max(retryAfterMs ?? 0, backoff);
}

export default fp(
  async (app) => {
    const { config } = app;
    const client = createCloudAuthClient({
      endpoint: config.CLOUDAUTH_ENDPOINT,
      accessKeyId: config.ALIBABA_CLOUD_ACCESS_KEY_ID,
      accessKeySecret: config.ALIBABA_CLOUD_ACCESS_KEY_SECRET,
      timeoutMs: config.CLOUDAUTH_TIMEOUT_MS,
    });

    /**
     * One upstream call within one overall deadline (CLOUDAUTH_TIMEOUT_MS): wait for a budget
     * slot, call, and on Throttling.* — the only answer that proves Alibaba did nothing, so even
     * Initialize may be repeated — back off (honouring x-acs-retry-after) and go again while the
     * deadline allows. Timeouts and every other failure are final.
     */
    const metered = async <T extends { requestId: string | undefined }>(api: ApiName, options: CallOptions = {}, call: (options: CallOptions) => Promise<T>): Promise<T> => {
      const deadlineAt = options.deadlineAt ?? Date.now() + config.CLOUDAUTH_TIMEOUT_MS;
      const log = options.log ?? app.log;
      for (let attempt = 1; ; attempt++) {
        // performance.now(), not Date.now(): the logged times are to 0.1 ms (the bench subtracts them).
        const queuedAt = performance.now();
        await app.budget.acquire(api, {
          ...(options.signal ? { signal: options.signal } : {}),
          maxWaitMs: Math.max(0, Math.min(config.CLOUDAUTH_BUDGET_WAIT_MS, deadlineAt - Date.now())),
        });
        const startedAt = performance.now();
        const times = () => ({ budgetWaitMs: tenths(startedAt - queuedAt), upstreamMs: tenths(performance.now() - startedAt) });
        try {
          const result = await call({ ...options, deadlineAt });
          app.metrics.upstreamCall(api, performance.now() - startedAt);
          if (result.requestId) options.onUpstreamRequestId?.(result.requestId);
          log.info({ api, attempt, ...times() }, 'upstream call');
          return result;
        } catch (err) {
          if (!(err instanceof CloudAuthError)) throw err;
          app.metrics.upstreamCall(api, performance.now() - startedAt, err);
          if (err.details.requestId) options.onUpstreamRequestId?.(err.details.requestId);
          const delay = throttleDelayMs(attempt, err.details.retryAfterMs);
          const retry = err.failure === 'throttled' && attempt < MAX_THROTTLED_ATTEMPTS && Date.now() + delay < deadlineAt;
          log.warn(
            { api, attempt, ...times(), upstream: err.toLog(), retryInMs: retry ? Math.round(delay) : undefined },
            'upstream call failed',
          );
          if (!retry) throw err;
          await sleep(delay, undefined, options.signal ? { signal: options.signal } : {});
        }
      }
    };

    app.decorate('cloudauth', {
      initialize: (request, options) => metered('Initialize', options, (o) => client.initialize(request, o)),
      checkResult: (request, options) => metered('CheckResult', options, (o) => client.checkResult(request, o)),
      deleteVerifyResult: (request, options) => metered('DeleteVerifyResult', options, (o) => client.deleteVerifyResult(request, o)),
    } satisfies CloudAuthApi);
  },
  { name: 'cloudauth', dependencies: ['config', 'budget', 'metrics'] },
);
