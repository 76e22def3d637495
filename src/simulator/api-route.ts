/** `POST /` (and GET): the cloudauth-intl RPC endpoint. */
import { setTimeout as sleep } from 'node:timers/promises';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { findAction } from './actions.js';
import { authenticate, type ApiRequestView, type AuthSettings } from './authenticate.js';
import { monotonicEpochMs, type ApiCallRecord, type CallLog } from './call-log.js';
import { SUCCESS, faultReply, type FaultQueue } from './faults.js';
import { API_VERSION, ApiError, apiErrors, errorReply, newRequestId, successReply, type ApiReply } from './protocol.js';
import type { SlidingWindowLimiter } from './rate-limiter.js';
import type { ProbeRecord } from './probe.js';
import { MalformedQueryError, parseAuthorization, parseRawQuery } from './signature.js';
import type { TransactionStore } from './store.js';

export interface ApiDeps {
  auth: AuthSettings;
  store: TransactionStore;
  calls: CallLog;
  faults: FaultQueue;
  limiter: SlidingWindowLimiter;
  /** The QPS limit of an action, shared by every AccessKey of one account. */
  qpsFor: (action: string) => number;
  latencyMs: number;
  publicUrl: () => string;
  requireHttpsCallback: boolean;
  /** Checks a CallbackUrl's accessibility at Initialize; absent: no check. */
  probeCallbackUrl: ((url: string) => Promise<ProbeRecord>) | undefined;
  /** The Code of a successful answer ("Success"; DeleteVerifyResult's may be configured as "200"). */
  successCodeFor: (action: string) => string;
}

/** What to answer and how long to wait first; reply null = drop the connection. */
interface Decision {
  reply: ApiReply | null;
  delayMs: number;
}

/** When each API request's headers were parsed: the earliest moment this process can see it. */
const arrivals = new WeakMap<FastifyRequest, number>();

export async function apiRoutes(app: FastifyInstance, deps: ApiDeps): Promise<void> {
  // Stamped before the body is read, so a busy event loop delays the stamp as little as possible
  // (Alibaba's gateway counts requests as they arrive, not when a handler gets to them).
  app.addHook('onRequest', (request, _reply, done) => {
    arrivals.set(request, monotonicEpochMs());
    done();
  });
  // Alibaba's client posts an empty body with no content-type; keep any body raw for its hash.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_request, body, done) => done(null, body));
  app.route({
    method: ['GET', 'POST'],
    url: '/',
    handler: (request, reply) => handleApiCall(request, reply, deps),
  });
}

async function handleApiCall(request: FastifyRequest, reply: FastifyReply, deps: ApiDeps): Promise<void> {
  const arrivedAt = arrivals.get(request) ?? monotonicEpochMs();
  const requestId = newRequestId();
  const action = headerText(request.headers['x-acs-action']);
  const record = deps.calls.add({
    requestId,
    arrivedAt,
    action,
    accessKeyId: parseAuthorization(headerText(request.headers.authorization))?.accessKeyId,
  });

  const decision = await decide(request, deps, record);
  await sleep(deps.latencyMs + decision.delayMs);

  record.finishedAt = monotonicEpochMs();
  record.code = decision.reply?.code ?? 'CONNECTION_RESET';
  record.status = decision.reply?.status;
  if (!decision.reply) {
    reply.hijack();
    request.raw.socket.destroy();
    return;
  }
  reply.code(decision.reply.status).headers(decision.reply.headers).send(decision.reply.body);
}

async function decide(request: FastifyRequest, deps: ApiDeps, call: ApiCallRecord): Promise<Decision> {
  try {
    const view = requestView(request);
    const caller = authenticate(view, deps.auth);
    call.account = caller.account;

    const version = headerText(request.headers['x-acs-version']);
    if (version !== API_VERSION) throw apiErrors.invalidVersion(version);
    const handler = findAction(call.action);
    if (!handler) throw apiErrors.actionNotFound(call.action);

    // "All RAM users under the same Alibaba Cloud account share the QPS limit": the window is the
    // account's, whichever of its AccessKeys signed the call. Counted on arrival, before any work.
    const admission = deps.limiter.tryAdmit(`${call.action}\n${caller.account}`, deps.qpsFor(call.action), call.arrivedAt);
    if (!admission.admitted) throw apiErrors.throttled(admission.retryAfterMs);

    const fault = deps.faults.take(call.action);
    if (fault && fault.code !== SUCCESS) return { reply: faultReply(fault, call.requestId), delayMs: fault.delayMs };

    const result = await handler(view.query, {
      ...caller,
      store: deps.store,
      publicUrl: deps.publicUrl(),
      requireHttpsCallback: deps.requireHttpsCallback,
      probeCallbackUrl: deps.probeCallbackUrl,
    });
    return { reply: successReply(call.requestId, result, deps.successCodeFor(call.action)), delayMs: fault?.delayMs ?? 0 };
  } catch (error) {
    if (!(error instanceof ApiError)) request.log.error({ err: error }, 'simulator API call failed');
    const apiError = error instanceof ApiError ? error : apiErrors.internal();
    return { reply: errorReply(call.requestId, apiError), delayMs: 0 };
  }
}

function requestView(request: FastifyRequest): ApiRequestView {
  const url = request.raw.url ?? '/';
  const q = url.indexOf('?');
  let query: Map<string, string>;
  try {
    query = parseRawQuery(q === -1 ? '' : url.slice(q + 1));
  } catch (error) {
    if (error instanceof MalformedQueryError) throw apiErrors.malformedQuery(error.message);
    throw error;
  }
  return {
    method: request.method,
    path: q === -1 ? url : url.slice(0, q),
    query,
    headers: request.headers,
    body: Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0),
  };
}

function headerText(value: string | string[] | undefined): string {
  return Array.isArray(value) ? value.join(',') : (value ?? '');
}
