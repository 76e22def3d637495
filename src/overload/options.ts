import type { FastifyUnderPressureOptions } from '@fastify/under-pressure';
import type { Config } from '../config/schema.js';
import { HttpError } from '../errors/http-error.js';

type PressureHandler = NonNullable<FastifyUnderPressureOptions['pressureHandler']>;

declare module 'fastify' {
  interface FastifyContextConfig {
    /** @fastify/under-pressure: what this route does when the process is overloaded. */
    pressureHandler?: PressureHandler;
  }
}

/**
 * Route config of the operational routes (/healthz, /readyz, /metrics): they answer even when the
 * process is overloaded, so liveness does not get the process killed for being busy, readiness
 * reports the overload itself and the metrics show it.
 */
export const EXEMPT_FROM_OVERLOAD = { pressureHandler: (() => undefined) satisfies PressureHandler };

/**
 * @fastify/under-pressure: while the event loop lags (or memory is above a limit) every other
 * route answers 503 OVERLOADED with Retry-After instead of queueing more work. A threshold of 0
 * turns that check off.
 */
export function underPressureOptions(config: Config): FastifyUnderPressureOptions {
  const retryAfter = String(config.OVERLOAD_RETRY_AFTER_S);
  return {
    maxEventLoopDelay: config.OVERLOAD_MAX_EVENT_LOOP_DELAY_MS,
    maxEventLoopUtilization: config.OVERLOAD_MAX_EVENT_LOOP_UTILIZATION,
    // Utilization over the last sample (each second), not since start-up.
    eventLoopUtilizationMode: 'interval',
    maxHeapUsedBytes: config.OVERLOAD_MAX_HEAP_USED_BYTES,
    maxRssBytes: config.OVERLOAD_MAX_RSS_BYTES,
    retryAfter: config.OVERLOAD_RETRY_AFTER_S,
    pressureHandler: async (request, _reply, type, value) => {
      request.log.warn({ type, value }, 'overloaded: request refused');
      throw new HttpError(503, 'OVERLOADED', 'The service is overloaded; retry shortly', { 'retry-after': retryAfter });
    },
  };
}
