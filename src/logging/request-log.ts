import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { LogController, type FastifyBaseLogger, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { REDACTED_PATHS } from './options.js';

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
 * The redaction of the `request completed` line: the paths of REDACTED_PATHS (logging/options.ts)
 * that can match one of its fields. Its fields are fixed and hold no secret by construction (the
 * request as its serializer writes it: method, path, address; the route pattern; numbers; a
 * validated merchantBizId; Alibaba's RequestId), so the wildcard paths (`*.token`, …), a safety
 * net for free-form objects, would only cost: pino's redactor runs each of them on every field of
 * every line, measured at 12-15 µs per line, a sixth of a status read's CPU.
 */
const COMPLETED_LINE_REDACTION = { paths: REDACTED_PATHS.filter((p) => p.startsWith('req.')), censor: '[REDACTED]' };

/**
 * Fastify's request logging, as one line per request: nothing on arrival, and on completion the
 * request id (reqId), method, path (never the query string), route pattern, status, duration,
 * the merchantBizId the request names and the RequestId of the last Alibaba call it made.
 */
export class RequestLogController extends LogController {
  /** The root logger's child that writes `request completed` lines (COMPLETED_LINE_REDACTION). */
  #completedLog: FastifyBaseLogger | undefined;

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
    };
    // An error is free-form: its line goes through the request's logger, with every redaction.
    if (error) {
      reply.log[level]({ ...line, err: error }, 'request errored');
      return;
    }
    // Its level decided above (by the request's logger, which a route's logLevel may change).
    this.#completedLog ??= request.server.log.child({}, { level: 'trace', redact: COMPLETED_LINE_REDACTION });
    this.#completedLog[level]({ reqId: request.id, ...line }, 'request completed');
  }
}
