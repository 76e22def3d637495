/** Alibaba-style response envelopes and the error codes the simulator answers with. */
import { randomUUID } from 'node:crypto';

export const API_VERSION = '2022-08-09';
export const HOST_ID = 'cloudauth-intl.cn-hongkong.aliyuncs.com';
const JSON_CONTENT_TYPE = 'application/json;charset=utf-8';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

/** What the API route writes back: already serialized, so faults can send anything. */
export interface ApiReply {
  status: number;
  code: string;
  headers: Record<string, string>;
  body: string;
}

export function newRequestId(): string {
  return randomUUID().toUpperCase();
}

export function successReply(requestId: string, result: unknown, code = 'Success'): ApiReply {
  const body = { RequestId: requestId, Code: code, Message: 'success', Result: result };
  return jsonReply(200, code, requestId, body);
}

export function errorReply(requestId: string, error: ApiError, status = error.status): ApiReply {
  const body = {
    RequestId: requestId,
    HostId: HOST_ID,
    Code: error.code,
    Message: error.message,
    Recommend: `https://api.aliyun.com/troubleshoot?q=${encodeURIComponent(error.code)}&product=Cloudauth-intl&requestId=${requestId}`,
  };
  const reply = jsonReply(status, error.code, requestId, body);
  Object.assign(reply.headers, error.headers);
  return reply;
}

function jsonReply(status: number, code: string, requestId: string, body: unknown): ApiReply {
  return {
    status,
    code,
    headers: { 'content-type': JSON_CONTENT_TYPE, 'x-acs-request-id': requestId },
    body: JSON.stringify(body),
  };
}

export const apiErrors = {
  missingParameter: (name: string) =>
    new ApiError(400, 'MissingParameter', `The input parameter "${name}" that is mandatory for processing this request is not supplied.`),
  invalidParameter: (name: string, reason: string) =>
    new ApiError(400, 'InvalidParameter', `The specified parameter "${name}" is invalid: ${reason}`),
  malformedQuery: (reason: string) => new ApiError(400, 'InvalidParameter', `The request query is invalid: ${reason}`),
  incompleteSignature: (reason: string) =>
    new ApiError(400, 'IncompleteSignature', `The request signature does not conform to Aliyun standards: ${reason}`),
  signatureDoesNotMatch: (detail: string) =>
    new ApiError(400, 'SignatureDoesNotMatch', `Specified signature does not match our calculation. ${detail}`),
  accessKeyNotFound: () => new ApiError(404, 'InvalidAccessKeyId.NotFound', 'Specified access key is not found.'),
  timestampFormat: () =>
    new ApiError(400, 'InvalidTimeStamp.Format', 'Specified x-acs-date is not in the format yyyy-MM-ddTHH:mm:ssZ.'),
  timestampExpired: () =>
    new ApiError(400, 'InvalidTimeStamp.Expired', 'Specified time stamp or date value is expired.'),
  nonceUsed: () => new ApiError(400, 'SignatureNonceUsed', 'Specified signature nonce was used already.'),
  invalidVersion: (version: string) =>
    new ApiError(400, 'InvalidVersion', `Specified parameter Version "${version}" is not valid.`),
  actionNotFound: (action: string) =>
    new ApiError(404, 'InvalidAction.NotFound', `Specified api "${action}" is not found, please check your url and method.`),
  throttled: (retryAfterMs: number) =>
    new ApiError(403, 'Throttling.Api', 'Request was denied due to api flow control.', {
      'x-acs-retry-after': String(retryAfterMs),
    }),
  internal: () => new ApiError(500, 'InternalError', 'The request processing has failed due to some unknown error.'),
};
