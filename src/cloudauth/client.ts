/**
 * The one file that talks to Alibaba's OpenAPI runtime. `@alicloud/cloudauth-intl20220809` (the
 * generated SDK) is not on the npm registry, so this calls the runtime it wraps,
 * `@alicloud/openapi-core`, with the same parameters; swapping in the official package later
 * changes only this file.
 */
import * as OpenApiModule from '@alicloud/openapi-core';
import { $OpenApiUtil } from '@alicloud/openapi-core';
import * as $dara from '@darabonba/typescript';
import { CloudAuthError, type UpstreamFailure } from './errors.js';
import {
  CHECK_RESULT_DETAIL_FIELDS,
  type ApiName,
  type CallOptions,
  type CheckResultRequest,
  type CheckResultResult,
  type CloudAuthApi,
  type DeleteVerifyResultRequest,
  type DeleteVerifyResultResult,
  type InitializeRequest,
  type InitializeResult,
} from './types.js';

const API_VERSION = '2022-08-09';

/**
 * The Code of a successful answer. Alibaba's pages say "Success"; the generated SDK's example
 * for DeleteVerifyResult's body shows "200" (as its sibling DeleteFaceVerifyResult documents:
 * "200 means success"), so that answer counts as success too, for that action only.
 */
const SUCCESS_CODES: Readonly<Record<ApiName, readonly string[]>> = {
  Initialize: ['Success'],
  CheckResult: ['Success'],
  DeleteVerifyResult: ['Success', '200'],
};

// The package is CommonJS with a default export; under NodeNext ESM it arrives one level deep.
const OpenApiClient = OpenApiModule.default.default;

export interface CloudAuthClientOptions {
  /** e.g. https://cloudauth-intl.cn-hongkong.aliyuncs.com or http://127.0.0.1:8090 */
  endpoint: string;
  accessKeyId: string;
  accessKeySecret: string;
  /** Overall deadline of one call, connection included. */
  timeoutMs: number;
}

type Body = Record<string, unknown>;

export function createCloudAuthClient(options: CloudAuthClientOptions): CloudAuthApi {
  const endpoint = new URL(options.endpoint);
  const client = new OpenApiClient(
    new $OpenApiUtil.Config({
      accessKeyId: options.accessKeyId,
      accessKeySecret: options.accessKeySecret,
      endpoint: endpoint.host,
      protocol: endpoint.protocol === 'http:' ? 'HTTP' : 'HTTPS',
    }),
  );
  const runtime = new $dara.RuntimeOptions({
    autoretry: false,
    readTimeout: options.timeoutMs,
    connectTimeout: Math.min(options.timeoutMs, 3000),
  });

  async function call(api: ApiName, query: object, callOptions: CallOptions = {}): Promise<Body> {
    const params = new $OpenApiUtil.Params({
      action: api,
      version: API_VERSION,
      protocol: 'HTTPS',
      pathname: '/',
      method: 'POST',
      authType: 'AK',
      style: 'RPC',
      reqBodyType: 'formData',
      bodyType: 'json',
    });
    const request = new $OpenApiUtil.OpenApiRequest({ query: withoutUndefined(query) });
    // The runtime's read timeout is not applied on reused keep-alive connections: the deadline is ours.
    const budgetMs = Math.min(options.timeoutMs, (callOptions.deadlineAt ?? Infinity) - Date.now());
    const deadline = AbortSignal.timeout(Math.max(1, budgetMs));
    const signal = callOptions.signal ? AbortSignal.any([deadline, callOptions.signal]) : deadline;

    let response: { body?: unknown };
    try {
      response = await abortable(client.callApi(params, request, runtime), signal);
    } catch (err) {
      if (signal.aborted) {
        throw new CloudAuthError(api, deadline.aborted ? 'timeout' : 'aborted', deadline.aborted ? 'Deadline' : 'Aborted');
      }
      throw classifyThrown(api, err);
    }
    const body = response.body;
    if (typeof body !== 'object' || body === null) throw new CloudAuthError(api, 'bad-response', 'NoBody');
    const b = body as Body;
    const requestId = str(b.RequestId);
    if (typeof b.Code !== 'string' || !SUCCESS_CODES[api].includes(b.Code)) {
      const code = str(b.Code) ?? 'Unknown';
      throw new CloudAuthError(api, failureOfCode(code, 200), code, {
        httpStatus: 200,
        ...(requestId ? { requestId } : {}),
        ...upstreamMessage(b.Message),
      });
    }
    return b;
  }

  return {
    async initialize(req: InitializeRequest, callOptions?: CallOptions): Promise<InitializeResult> {
      const body = await call('Initialize', req, callOptions);
      const result = (body.Result ?? {}) as Body;
      const transactionId = str(result.TransactionId);
      const transactionUrl = str(result.TransactionUrl);
      if (!transactionId || !transactionUrl) throw new CloudAuthError('Initialize', 'bad-response', 'MissingResult');
      return { requestId: str(body.RequestId), transactionId, transactionUrl, protocol: str(result.Protocol) };
    },
    async checkResult(req: CheckResultRequest, callOptions?: CallOptions): Promise<CheckResultResult> {
      const body = await call('CheckResult', req, callOptions);
      const result = (body.Result ?? {}) as Body;
      const passed = str(result.Passed);
      if (!passed) throw new CloudAuthError('CheckResult', 'bad-response', 'MissingResult');
      return {
        requestId: str(body.RequestId),
        passed,
        subCode: str(result.SubCode),
        details: Object.fromEntries(
          Object.entries(CHECK_RESULT_DETAIL_FIELDS).flatMap(([name, wire]) => {
            const value = str(result[wire]);
            return value === undefined ? [] : [[name, value]];
          }),
        ),
      };
    },
    async deleteVerifyResult(req: DeleteVerifyResultRequest, callOptions?: CallOptions): Promise<DeleteVerifyResultResult> {
      const body = await call('DeleteVerifyResult', req, callOptions);
      const result = (body.Result ?? {}) as Body;
      const deleteResult = str(result.DeleteResult);
      if (!deleteResult) throw new CloudAuthError('DeleteVerifyResult', 'bad-response', 'MissingResult');
      return { requestId: str(body.RequestId), deleteResult, transactionId: str(result.TransactionId) };
    },
  };
}

const str = (v: unknown): string | undefined => (typeof v === 'string' && v.length > 0 ? v : undefined);

function withoutUndefined(query: object): Record<string, string> {
  return Object.fromEntries(Object.entries(query).filter(([, v]) => v !== undefined)) as Record<string, string>;
}

/** What stands in the log for a removed URL, query or parameter value. */
const REMOVED = '[removed]';

/**
 * Alibaba's own Message (from the JSON body), for the log. It usually names the offending
 * parameter only, but nothing promises that it never quotes our request, whose values are
 * personal (MetaInfo, MerchantUserId) or secret (CallbackToken, CallbackUrl's query): URLs,
 * query strings and `name=value` pairs are removed before it is logged (parameter names stay, so
 * a MetaInfo refusal is still recognized). Removed first, then shortened, so that a cut cannot
 * leave half a URL behind.
 */
function upstreamMessage(message: unknown): { upstreamMessage?: string } {
  const m = str(message);
  if (!m) return {};
  const stripped = m
    .replace(/[a-z][a-z0-9+.-]*:\/\/\S*/gi, REMOVED) // scheme://… up to the next space
    .replace(/(^|[\s("'=])\/\/\S+/g, `$1${REMOVED}`) // protocol-relative //host/…
    .replace(/\?\S+/g, REMOVED) // ?query
    .replace(/([A-Za-z_][\w.-]*)=[^\s&]*/g, `$1=${REMOVED}`); // name=value (each of a=b&c=d)
  return { upstreamMessage: stripped.slice(0, 200) };
}

function failureOfCode(code: string, httpStatus: number | undefined): UpstreamFailure {
  if (code.includes('Throttling')) return 'throttled';
  if (/^(Forbidden|InvalidAccessKeyId|SignatureDoesNotMatch|IncompleteSignature|InvalidTimeStamp)/.test(code)) return 'forbidden';
  if (httpStatus !== undefined && httpStatus >= 500) return 'server';
  if (code === 'InternalError' || code === 'ServiceUnavailable') return 'server';
  return 'rejected';
}

const UNREACHABLE = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ECONNABORTED']);

function classifyThrown(api: ApiName, err: unknown): CloudAuthError {
  if (err instanceof SyntaxError) return new CloudAuthError(api, 'bad-response', 'NotJson');
  const e = (err ?? {}) as { name?: string; code?: unknown; statusCode?: unknown; requestId?: unknown; retryAfter?: unknown; data?: unknown };
  const code = typeof e.code === 'string' ? e.code : 'Unknown';
  const httpStatus = typeof e.statusCode === 'number' ? e.statusCode : undefined;
  const requestId = str(e.requestId);
  const data = (typeof e.data === 'object' && e.data !== null ? e.data : {}) as Body;
  const details = {
    ...(httpStatus !== undefined ? { httpStatus } : {}),
    ...(requestId ? { requestId } : {}),
    ...(typeof e.retryAfter === 'number' ? { retryAfterMs: e.retryAfter } : {}),
    ...upstreamMessage(data.Message),
  };
  if (e.name === 'ThrottlingError' || e.name === 'ClientError' || e.name === 'ServerError') {
    return new CloudAuthError(api, failureOfCode(code, httpStatus), code, details);
  }
  if (e.name === 'RequestTimeoutError' || /TIMEDOUT/.test(code)) return new CloudAuthError(api, 'timeout', code, details);
  if (UNREACHABLE.has(code)) return new CloudAuthError(api, 'unreachable', code, details);
  // Anything else (a reset connection, an unknown client error): the outcome is unknown.
  return new CloudAuthError(api, 'timeout', code === 'Unknown' ? (e.name ?? 'Unknown') : code, details);
}

/** Settles with `promise`, or rejects as soon as `signal` aborts. */
function abortable<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}
