/**
 * The one file that talks to Alibaba's OpenAPI. `@alicloud/cloudauth-intl20220809` (the generated
 * SDK) is not on the npm registry; its runtime, `@alicloud/openapi-core`, signs each request here
 * (V3, ACS3-HMAC-SHA256), but this file sends it.
 *
 * Why not `client.callApi`: it builds, signs and sends in one go, through httpx's module-private
 * keep-alive agent (openapi-core 1.0.8 passes no agent, and its runtime's keepAlive option would
 * make a new agent per call). The QPS budget needs three things it cannot give: the request signed
 * and its connection open BEFORE the budget's slot, so that nothing but the socket write happens
 * after it; the write itself at the slot; and the moment the request was written, to measure the
 * dispatch delay. The wire format stays the runtime's: every parameter in the query string, an
 * empty body, the same headers; its errors are mapped as `callApi` maps them.
 */
import http from 'node:http';
import https from 'node:https';
import { performance } from 'node:perf_hooks';
import { stringify } from 'node:querystring';
import { OpenApiUtil } from '@alicloud/openapi-core';
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
const SIGNATURE_ALGORITHM = 'ACS3-HMAC-SHA256';
const EMPTY_BODY_SHA256 = OpenApiUtil.hash(Buffer.alloc(0), SIGNATURE_ALGORITHM).toString('hex');
/** Re-preparations of one call whose held connection closed before its request was written. */
const MAX_PREPARES = 3;

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

export interface CloudAuthClientOptions {
  /** e.g. https://cloudauth-intl.cn-hongkong.aliyuncs.com or http://127.0.0.1:8090 */
  endpoint: string;
  accessKeyId: string;
  accessKeySecret: string;
  /** Overall deadline of one call, connection included. */
  timeoutMs: number;
}

type Body = Record<string, unknown>;

interface Answer {
  statusCode: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** A signed request on an open connection, nothing written yet. */
interface Prepared {
  /** Resolves once the connection is open (at once when a kept-alive one was free). */
  connected: Promise<void>;
  /** Writes the request; resolves with performance.now() once it was handed to the kernel. */
  send: () => Promise<number>;
  /** Whether send wrote anything: if not, Alibaba never saw this request. */
  sent(): boolean;
  answer: Promise<Answer>;
  /** Drops the request (and its connection) unless it was answered. */
  cancel(): void;
}

/** The client and the connections it keeps (close() ends them). */
export type CloudAuthClient = CloudAuthApi & { close(): void };

export function createCloudAuthClient(options: CloudAuthClientOptions): CloudAuthClient {
  const endpoint = new URL(options.endpoint);
  const secure = endpoint.protocol === 'https:';
  // Kept-alive connections, the most recently used first: the warmest is the least likely to be
  // closed by the server meanwhile, and spare ones idle out. A new one is opened before the slot.
  const agent = new (secure ? https.Agent : http.Agent)({ keepAlive: true, scheduling: 'lifo' });
  const userAgent = OpenApiUtil.getUserAgent('');

  function prepare(api: ApiName, query: Record<string, string>, signal: AbortSignal): Prepared {
    // What openapi-core's doRequest sends for an RPC call (AK credentials, no body).
    const signed = new $dara.Request();
    signed.protocol = secure ? 'HTTPS' : 'HTTP';
    signed.method = 'POST';
    signed.pathname = '/';
    signed.query = query;
    signed.headers = {
      host: endpoint.host,
      'x-acs-version': API_VERSION,
      'x-acs-action': api,
      'user-agent': userAgent,
      'x-acs-date': OpenApiUtil.getTimestamp(),
      'x-acs-signature-nonce': OpenApiUtil.getNonce(),
      accept: 'application/json',
      'x-acs-content-sha256': EMPTY_BODY_SHA256,
    };
    signed.headers.Authorization = OpenApiUtil.getAuthorization(signed, SIGNATURE_ALGORITHM, EMPTY_BODY_SHA256, options.accessKeyId, options.accessKeySecret);

    const req = (secure ? https : http).request({
      host: endpoint.hostname,
      port: endpoint.port || undefined,
      method: 'POST',
      path: `/?${stringify(query)}`,
      headers: { ...signed.headers, 'content-length': '0' },
      agent,
      signal,
    });
    let sent = false;
    let answered = false;
    const answer = new Promise<Answer>((resolve, reject) => {
      req.on('error', reject);
      req.once('response', (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('error', reject);
        res.once('end', () => {
          answered = true;
          resolve({ statusCode: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') });
        });
      });
    });
    answer.catch(() => {}); // awaited by call() unless it gave up first
    const connected = new Promise<void>((resolve, reject) => {
      answer.catch(reject);
      req.once('socket', (socket) => {
        if (req.reusedSocket || !socket.connecting) resolve();
        else socket.once(secure ? 'secureConnect' : 'connect', () => resolve());
      });
    });
    connected.catch(() => {});
    return {
      connected,
      answer,
      sent: () => sent,
      send() {
        if (req.destroyed) return Promise.reject(new Error('connection closed before the request was written'));
        sent = true;
        const written = new Promise<number>((resolve, reject) => {
          req.once('finish', () => resolve(performance.now()));
          answer.catch(reject);
        });
        req.end();
        return written;
      },
      cancel() {
        if (!answered) req.destroy();
      },
    };
  }

  async function call(api: ApiName, query: object, callOptions: CallOptions = {}): Promise<Body> {
    // One deadline for the whole call: the connection, the queue for the budget's slot, the answer.
    const budgetMs = Math.min(options.timeoutMs, (callOptions.deadlineAt ?? Infinity) - Date.now());
    const deadline = AbortSignal.timeout(Math.max(1, budgetMs));
    const caller = callOptions.signal;
    const signal = caller ? AbortSignal.any([deadline, caller]) : deadline;
    const params = withoutUndefined(query);

    // Nothing reached Alibaba: our caller going away passes through as it is (like a budget refusal).
    const unsent = (err: unknown): unknown =>
      caller?.aborted ? caller.reason : deadline.aborted ? new CloudAuthError(api, 'timeout', 'Deadline') : thrownError(api, 'unreachable', err);
    const failed = (err: unknown): CloudAuthError =>
      signal.aborted ? new CloudAuthError(api, deadline.aborted ? 'timeout' : 'aborted', deadline.aborted ? 'Deadline' : 'Aborted') : thrownError(api, 'timeout', err);

    let answer: Answer;
    for (let attempt = 1; ; attempt++) {
      const prepared = prepare(api, params, signal);
      try {
        await prepared.connected;
      } catch (err) {
        prepared.cancel();
        throw unsent(err);
      }
      try {
        await (callOptions.dispatch ?? sendNow)(prepared.send);
      } catch (err) {
        prepared.cancel();
        throw err; // the budget's refusal, or our caller went away while queued
      }
      try {
        answer = await prepared.answer;
        break;
      } catch (err) {
        prepared.cancel();
        if (prepared.sent()) throw failed(err);
        // The held connection closed before the slot came (e.g. the server's idle timeout), so
        // nothing was written: prepare it again on a fresh connection (the slot is lost).
        if (attempt >= MAX_PREPARES || signal.aborted) throw unsent(err);
      }
    }
    return bodyOf(api, answer);
  }

  return {
    close: () => agent.destroy(),
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

/** Without a dispatch hook, a prepared request is written at once. */
const sendNow = async (send: () => Promise<number>): Promise<void> => {
  send().catch(() => {}); // a failed write shows in the answer
};

/** What `callApi` makes of an answer: the JSON body, or its error (HTTP 4xx/5xx) as a CloudAuthError. */
function bodyOf(api: ApiName, answer: Answer): Body {
  let body: unknown;
  try {
    body = JSON.parse(answer.body);
  } catch {
    throw new CloudAuthError(api, 'bad-response', 'NotJson', { httpStatus: answer.statusCode });
  }
  if (typeof body !== 'object' || body === null) throw new CloudAuthError(api, 'bad-response', 'NoBody');
  const b = body as Body;
  const status = answer.statusCode;
  const requestId = str(b.RequestId) ?? str(b.requestId);
  if (status >= 400 && status < 600) {
    const code = str(b.Code) ?? str(b.code) ?? 'Unknown';
    const retryAfterMs = OpenApiUtil.getThrottlingTimeLeft(answer.headers as Record<string, string>);
    throw new CloudAuthError(api, failureOfCode(code, status), code, {
      httpStatus: status,
      ...(requestId ? { requestId } : {}),
      ...(code.includes('Throttling') && retryAfterMs !== undefined ? { retryAfterMs } : {}),
      ...upstreamMessage(b.Message ?? b.message),
    });
  }
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

/**
 * A thrown failure, by when it happened: before the request was written (refused, DNS, TLS, a
 * closed connection: `unreachable`, Alibaba saw nothing) or after (answers are read by bodyOf:
 * `timeout`, the outcome is unknown). Named by the error's code.
 */
function thrownError(api: ApiName, failure: 'unreachable' | 'timeout', err: unknown): CloudAuthError {
  const e = (err ?? {}) as { name?: string; code?: unknown };
  return new CloudAuthError(api, failure, typeof e.code === 'string' ? e.code : (e.name ?? 'Unknown'));
}
