import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { FastifyBaseLogger, FastifyServerFactory } from 'fastify';
import querystring from 'fast-querystring';
import { staticSecurityHeaders } from '../../errors/security-headers.js';
import { requestIdFrom, REQUEST_ID_HEADER } from '../../logging/request-log.js';
import type { CallbackTokens } from '../../sessions/callback-token.js';
import { rejectedCallback } from '../../sessions/callback.js';
import { singleValue } from './callback-fields.js';

/** The callback route's path (the kyc routes' prefix + '/callback'), as Alibaba calls it. */
export const CALLBACK_PATH = '/kyc/callback';

/** The parser of every query string, Fastify's and the gate's: both must read a URL alike. */
export const parseQuery = (query: string): Record<string, unknown> => (query.length === 0 ? {} : querystring.parse(query));

/**
 * A callback whose token this service never made (see CallbackTokens): one HMAC decides it. A
 * missing or repeated token, or one given under two spellings (callbackToken and CallbackToken), is
 * not judged here: the route's validation answers it (400).
 */
export function isForged(tokens: CallbackTokens, query: Record<string, unknown>): boolean {
  const token = singleValue(query, 'callbackToken');
  return typeof token === 'string' && !tokens.isGenuine(token);
}

interface Armed {
  tokens: CallbackTokens;
  /** Counts a refusal (metrics), given how long it took. */
  onRefused: (seconds: number) => void;
  log: FastifyBaseLogger;
}

/**
 * Refuses forged callbacks in front of Fastify, at the HTTP server, so that a flood of them costs
 * one HMAC and one small response (about twice a bare Fastify route's CPU: `npm run bench:cpu`),
 * not a request through the whole plugin stack (hooks, logging, metrics, validation: ~5×).
 *
 * It answers exactly what the route answers to the same request (403 CALLBACK_REJECTED with the
 * security headers and the request id), for the one shape Alibaba sends: `GET /kyc/callback?…`.
 * Anything else (another path or method, a genuine token, `app.inject()`) goes to Fastify, whose
 * callback route makes the same check first (isForged), so the gate only changes how much a refusal
 * costs, never what it says. A refusal here is counted and logged (at debug) like the route's.
 */
export class CallbackGate {
  #armed: Armed | undefined;
  readonly #refusal = rejectedCallback();
  readonly #body = JSON.stringify({ code: this.#refusal.code, message: this.#refusal.message });
  /** Every header of a refusal but the request id, as writeHead takes them: [name, value, …]. */
  readonly #headers = [
    ...staticSecurityHeaders(),
    'content-type',
    'application/json; charset=utf-8',
    'content-length',
    String(Buffer.byteLength(this.#body)),
  ];

  /** The callback route arms the gate once the tokens and metrics exist; until then it lets all through. */
  arm(armed: Armed): void {
    this.#armed = armed;
  }

  /**
   * Fastify's `serverFactory`: the HTTP server Fastify would make (with its timeouts), with the
   * gate in front of Fastify's handler.
   */
  readonly serverFactory: FastifyServerFactory = (handler, options) => {
    const serve = (req: IncomingMessage, res: ServerResponse) => {
      if (!this.refused(req, res)) handler(req, res);
    };
    const server: Server = createServer(options.http ?? {}, serve);
    // An Expect other than 100-continue is served like any request (RFC 9110 allows ignoring it),
    // not refused by Node with a bare 417 that carries no error code.
    server.on('checkExpectation', serve);
    // What Fastify sets on the server it makes itself (lib/server.js), from the same options.
    const { keepAliveTimeout, requestTimeout, connectionTimeout, maxRequestsPerSocket } = options;
    if (typeof keepAliveTimeout === 'number') server.keepAliveTimeout = keepAliveTimeout;
    if (typeof requestTimeout === 'number') server.requestTimeout = requestTimeout;
    if (typeof connectionTimeout === 'number') server.setTimeout(connectionTimeout);
    if (typeof maxRequestsPerSocket === 'number' && maxRequestsPerSocket > 0) server.maxRequestsPerSocket = maxRequestsPerSocket;
    return server;
  };

  /** Answers a forged callback and returns true; returns false for everything else. */
  private refused(req: IncomingMessage, res: ServerResponse): boolean {
    const armed = this.#armed;
    const url = req.url;
    if (!armed || req.method !== 'GET' || !url?.startsWith(CALLBACK_PATH) || url[CALLBACK_PATH.length] !== '?') return false;
    const startedAt = performance.now();
    if (!isForged(armed.tokens, parseQuery(url.slice(CALLBACK_PATH.length + 1)))) return false;

    const requestId = requestIdFrom(req);
    const { statusCode } = this.#refusal;
    res.writeHead(statusCode, [...this.#headers, REQUEST_ID_HEADER, requestId]);
    res.end(this.#body);
    armed.onRefused((performance.now() - startedAt) / 1000);
    armed.log.debug({ reqId: requestId, req: { method: 'GET', url: CALLBACK_PATH }, route: CALLBACK_PATH, statusCode, gate: true }, 'request completed');
    return true;
  }
}
