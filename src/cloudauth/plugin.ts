import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import fp from 'fastify-plugin';
import type { Grant } from '../budget/budget.js';
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
    app.addHook('onClose', async () => client.close());

    /**
     * One upstream call within one overall deadline (CLOUDAUTH_TIMEOUT_MS): the client signs the
     * request and opens its connection, then the budget's slot puts it on the wire (nothing else
     * happens between the two). On Throttling.* — the only answer that proves Alibaba did nothing,
     * so even Initialize may be repeated — back off (honouring x-acs-retry-after) and go again
     * while the deadline allows. Timeouts and every other failure are final.
     */
    const metered = async <T extends { requestId: string | undefined }>(api: ApiName, options: CallOptions = {}, call: (options: CallOptions) => Promise<T>): Promise<T> => {
      const deadlineAt = options.deadlineAt ?? Date.now() + config.CLOUDAUTH_TIMEOUT_MS;
      const log = options.log ?? app.log;
      for (let attempt = 1; ; attempt++) {
        // performance.now(), not Date.now(): the logged times are to 0.1 ms (the bench subtracts them).
        const calledAt = performance.now();
        let queuedAt: number | undefined;
        let sentAt: number | undefined;
        let writtenAt: number | undefined;
        let grant: Grant | undefined;
        const dispatch = async (send: () => Promise<number>): Promise<void> => {
          queuedAt = performance.now();
          grant = await app.budget.acquire(api, {
            ...(options.signal ? { signal: options.signal } : {}),
            maxWaitMs: Math.max(0, Math.min(config.CLOUDAUTH_BUDGET_WAIT_MS, deadlineAt - Date.now())),
            send: () => {
              sentAt = performance.now();
              const written = send();
              written.then((at) => (writtenAt = at), () => {});
              return written;
            },
          });
        };
        const times = () => ({
          connectMs: tenths((queuedAt ?? performance.now()) - calledAt),
          ...(queuedAt !== undefined && sentAt !== undefined ? { budgetWaitMs: tenths(sentAt - queuedAt) } : {}),
          // the reserved slot on Redis's clock (epoch ms) and the margin its reservation added
          ...(grant ? { slotAtMs: tenths(grant.slotAtMs), marginMs: tenths(grant.marginMs) } : {}),
          // slot → written: how late the caller woke, then the write itself
          ...(grant && sentAt !== undefined && writtenAt !== undefined ? { dispatchMs: tenths(grant.latenessMs + writtenAt - sentAt) } : {}),
          ...(sentAt !== undefined ? { upstreamMs: tenths(performance.now() - sentAt) } : {}),
        });
        try {
          const result = await call({ ...options, deadlineAt, dispatch });
          app.metrics.upstreamCall(api, performance.now() - (sentAt ?? calledAt));
          if (result.requestId) options.onUpstreamRequestId?.(result.requestId);
          log.info({ api, attempt, ...times() }, 'upstream call');
          return result;
        } catch (err) {
          if (!(err instanceof CloudAuthError)) throw err;
          app.metrics.upstreamCall(api, performance.now() - (sentAt ?? calledAt), err);
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
