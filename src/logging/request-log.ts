import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { LogController, type FastifyBaseLogger, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Logger } from 'pino';

/** The header a caller (or a proxy) may send a request id in; the id is echoed back in it. */
export const REQUEST_ID_HEADER = 'x-request-id';
/**
 * An incoming request id is kept only when it is a plain token (UUIDs, hex trace ids, base64url):
 * it is echoed in a header and written in every log line of the request, so nothing a log viewer,
 * a shell or a path could read as syntax (`/`, `:`, `=`, `+`, spaces), and nothing long.
 */
const SANE_REQUEST_ID = /^[A-Za-z0-9._-]{1,64}$/;
const SANE_MERCHANT_BIZ_ID = /^[A-Za-z0-9]{1,32}$/;

/** Fastify's genReqId: the caller's x-request-id when it is sane, else a new UUID. */
export function requestIdFrom(req: IncomingMessage): string {
  const incoming = req.headers[REQUEST_ID_HEADER];
  return typeof incoming === 'string' && SANE_REQUEST_ID.test(incoming) ? incoming : randomUUID();
}

/** The merchantBizId a request names (params, query or body), when it is a valid one. */
function merchantBizIdOf(request: FastifyRequest): string | undefined {
  for (const source of [request.params, request.query, request.body]) {
    const value = typeof source === 'object' && source !== null ? (source as Record<string, unknown>).merchantBizId : undefined;
    if (typeof value === 'string' && SANE_MERCHANT_BIZ_ID.test(value)) return value;
  }
  return undefined;
}

/**
 * Fastify's request logging, as one line per request: nothing on arrival, and on completion the
 * request id (reqId), method, path (never the query string), route pattern, status, duration,
 * the merchantBizId the request names and the RequestId of the last Alibaba call it made.
 */
export class RequestLogController extends LogController {
  override incomingRequest(): void {}

  override requestCompleted(error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply): void {
    const level = error ? 'error' : reply.statusCode >= 500 ? 'warn' : request.logQuietly ? 'debug' : 'info';
    // Not even built when it would not be written (a forged flood's lines are debug).
    if (!(reply.log as FastifyBaseLogger & Pick<Logger, 'isLevelEnabled'>).isLevelEnabled(level)) return;
    const line = {
      req: request,
      route: request.routeOptions.url,
      statusCode: reply.statusCode,
      durationMs: Math.round(reply.elapsedTime * 10) / 10,
      merchantBizId: merchantBizIdOf(request),
      upstreamRequestId: request.upstreamRequestId ?? undefined,
      ...(error ? { err: error } : {}),
    };
    reply.log[level](line, error ? 'request errored' : 'request completed');
  }
}
