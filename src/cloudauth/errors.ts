import { HttpError } from '../errors/http-error.js';
import type { ApiName } from './types.js';

/** Why an upstream call failed, in the terms the service reacts to. */
export type UpstreamFailure =
  | 'throttled' // Throttling.*: Alibaba certainly did not run the call
  | 'rejected' // MissingParameter / InvalidParameter and other 4xx: the request was refused
  | 'forbidden' // Forbidden.*: account or RAM permission problem, an operator must act
  | 'server' // InternalError / 5xx
  | 'bad-response' // not JSON, or JSON without the expected fields
  | 'timeout' // no answer before the deadline: the outcome is unknown
  | 'unreachable' // connection refused / DNS / TLS: the request did not get there
  | 'aborted'; // our caller gave up

/**
 * A failed cloudauth-intl call. Carries only what is safe to log: the Alibaba error code, HTTP
 * status and RequestId. The client's own error messages embed the request's query string
 * (MetaInfo, MerchantUserId, CallbackToken), so they are never kept.
 */
export class CloudAuthError extends Error {
  override name = 'CloudAuthError';
  constructor(
    readonly api: ApiName,
    readonly failure: UpstreamFailure,
    readonly upstreamCode: string,
    readonly details: { httpStatus?: number; requestId?: string; retryAfterMs?: number; upstreamMessage?: string } = {},
  ) {
    super(`${api} failed (${failure}): ${upstreamCode}`);
  }

  /** The fields worth a log line. */
  toLog(): Record<string, unknown> {
    return { api: this.api, failure: this.failure, upstreamCode: this.upstreamCode, ...this.details };
  }
}

const retryAfterSeconds = (ms: number | undefined) => String(Math.max(1, Math.ceil((ms ?? 1000) / 1000)));

/**
 * The answer our own caller gets for an upstream failure. A refused request is our bug (502),
 * except where the refusal names MetaInfo, which comes from the caller's frontend SDK (400).
 */
export function upstreamHttpError(err: CloudAuthError): HttpError {
  switch (err.failure) {
    case 'throttled':
      return new HttpError(503, 'UPSTREAM_THROTTLED', 'Alibaba Cloud is throttling verification requests; retry shortly', {
        'retry-after': retryAfterSeconds(err.details.retryAfterMs),
      });
    case 'rejected':
      if (/metainfo/i.test(err.details.upstreamMessage ?? '')) {
        return new HttpError(400, 'INVALID_META_INFO', 'Alibaba Cloud rejected metaInfo; collect it again with the client SDK');
      }
      return new HttpError(502, 'UPSTREAM_REJECTED', 'Alibaba Cloud rejected the verification request');
    case 'forbidden':
      return new HttpError(503, 'UPSTREAM_ACCESS_DENIED', 'The verification service is not available for this account');
    case 'timeout':
      return new HttpError(504, 'UPSTREAM_TIMEOUT', 'Alibaba Cloud did not answer in time');
    case 'aborted':
      return new HttpError(503, 'REQUEST_ABORTED', 'The request was abandoned');
    case 'server':
    case 'bad-response':
    case 'unreachable':
      return new HttpError(502, 'UPSTREAM_ERROR', 'Alibaba Cloud failed to answer the verification request');
  }
}
