import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import fp from 'fastify-plugin';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { hasZodFastifySchemaValidationErrors } from 'fastify-type-provider-zod';
import { HttpError } from './http-error.js';
import { securityHeaders } from './security-headers.js';
import type { ErrorResponse } from './schema.js';

/** Fastify's own 4xx errors, by their `code`, as our stable codes. */
const FRAMEWORK_CODES: Record<string, string> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'BODY_TOO_LARGE',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'BAD_REQUEST',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'INVALID_JSON',
  FST_ERR_CTP_INVALID_JSON_BODY: 'INVALID_JSON',
};

/**
 * Every error becomes `{ code, message }`: validation → 400 VALIDATION_ERROR with details,
 * HttpError → its own status and code, framework 4xx → a mapped code, anything else → a 500
 * that says nothing about internals (the log has the details).
 */
export default fp(
  async (app) => {
    app.setErrorHandler((err: FastifyError, request, reply) => {
      if (hasZodFastifySchemaValidationErrors(err)) {
        const where = err.validationContext ?? 'request';
        const body: ErrorResponse = {
          code: 'VALIDATION_ERROR',
          message: `Invalid ${where}`,
          details: err.validation.map((v) => ({
            path: `${where}${v.instancePath.replaceAll('/', '.')}`,
            message: v.message ?? 'invalid',
          })),
        };
        return reply.code(400).send(body);
      }
      if (err instanceof HttpError) {
        if (err.statusCode >= 500) request.log.warn({ code: err.code }, err.message);
        return reply.code(err.statusCode).headers(err.headers).send({ code: err.code, message: err.message } satisfies ErrorResponse);
      }
      const status = err.statusCode ?? 500;
      if (status >= 400 && status < 500) {
        const code = FRAMEWORK_CODES[err.code] ?? (err instanceof SyntaxError ? 'INVALID_JSON' : 'BAD_REQUEST');
        return reply.code(status).send({ code, message: err.message } satisfies ErrorResponse);
      }
      request.log.error({ err }, 'unhandled error');
      return reply.code(500).send({ code: 'INTERNAL_ERROR', message: 'Internal server error' } satisfies ErrorResponse);
    });

    app.setNotFoundHandler((request, reply) =>
      reply.code(404).send({ code: 'NOT_FOUND', message: `No route ${request.method} ${request.url.split('?')[0]}` } satisfies ErrorResponse),
    );
  },
  { name: 'error-handler' },
);

/**
 * Errors Fastify meets before routing (a malformed URL, a too-long path parameter): no hook runs
 * for them, so the envelope and the security headers are applied here.
 */
export const frameworkErrors = (err: FastifyError, request: FastifyRequest, reply: FastifyReply): void => {
  securityHeaders(request.raw, reply.raw, () => {});
  const status = err.statusCode && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 400;
  request.log.info({ code: err.code }, 'malformed request');
  void reply.code(status).send({ code: 'BAD_REQUEST', message: 'Malformed request URL' } satisfies ErrorResponse);
};

/** Node's HTTP parser errors by their code (null: the client is gone, nothing to answer). */
const PARSER_ERRORS: Record<string, [number, ErrorResponse] | null> = {
  ECONNRESET: null,
  HPE_HEADER_OVERFLOW: [431, { code: 'HEADERS_TOO_LARGE', message: 'The request line and headers exceed the size limit' }],
  ERR_HTTP_REQUEST_TIMEOUT: [408, { code: 'REQUEST_TIMEOUT', message: 'The request did not arrive in time' }],
};

/**
 * Fastify's clientErrorHandler: what Node's HTTP parser refuses before there is a request (a
 * request line and headers over 16 KB, a malformed request, a request timeout) gets the envelope
 * too, then the connection is closed (the parser cannot go on reading it). Otherwise as Fastify's
 * default handler.
 */
export function clientErrors(this: FastifyInstance, err: Error & { code?: string; rawPacket?: unknown }, socket: Socket): void {
  const answer = err.code !== undefined && Object.hasOwn(PARSER_ERRORS, err.code) ? PARSER_ERRORS[err.code]! : [400, { code: 'BAD_REQUEST', message: 'Malformed HTTP request' }] as const;
  if (answer === null || socket.destroyed) return;
  const [status, body] = answer;
  this.log.debug({ code: err.code }, 'malformed HTTP request');
  if (socket.writable) {
    const json = JSON.stringify(body);
    // An answer to HEAD has no body (the client would read one as a second, broken response).
    const head = Buffer.isBuffer(err.rawPacket) && err.rawPacket.subarray(0, 5).toString('latin1') === 'HEAD ';
    socket.write(
      `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(json)}\r\nConnection: close\r\n\r\n${head ? '' : json}`,
    );
  }
  socket.destroy(err);
}
