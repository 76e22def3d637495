/**
 * Every `code` an error response can carry, with its HTTP status and meaning. This catalogue is the
 * single source of truth: HttpError only accepts these codes, each route documents the ones it can
 * answer with (see errorResponses in schema.ts), and the README's error table is generated from it
 * (`npx tsx src/dev/tables.ts errors`). test/openapi.test.ts checks that each code is produced
 * somewhere in src/ with this status, and that the OpenAPI document names only these codes.
 */
export const ERROR_CODES = {
  VALIDATION_ERROR: { status: 400, meaning: 'The request does not match the schema; `details` lists each problem.' },
  INVALID_JSON: { status: 400, meaning: 'The body is not valid JSON (or is empty).' },
  BAD_REQUEST: { status: 400, meaning: 'A malformed HTTP request (e.g. a malformed URL or a wrong Content-Length).' },
  DOC_TYPE_NOT_ALLOWED: { status: 400, meaning: 'The `docType` is not in `KYC_DOC_TYPES`.' },
  RETURN_URL_NOT_ALLOWED: { status: 400, meaning: "The `returnUrl`'s origin is not in `KYC_RETURN_URL_ORIGINS`, it has user info (`@`) or a backslash or percent-escape where other parsers could read another host, or it is not https (in production)." },
  INVALID_META_INFO: { status: 400, meaning: 'Alibaba refused the MetaInfo: collect it again with the client SDK.' },
  UNAUTHENTICATED: { status: 401, meaning: 'No `Authorization: Bearer` token.' },
  INVALID_TOKEN: { status: 401, meaning: 'The bearer token was rejected (a caller JWT: signature, expiry, issuer, audience; or not `METRICS_TOKEN`).' },
  INVALID_API_KEY: { status: 401, meaning: '`x-api-key` is missing or wrong (`/internal/*`).' },
  CALLBACK_REJECTED: { status: 403, meaning: 'Unknown transaction or wrong callback token (the same answer for both).' },
  SESSION_NOT_FOUND: { status: 404, meaning: "No such verification (or it is someone else's)." },
  NOT_FOUND: { status: 404, meaning: 'No such route.' },
  EVENT_NOT_FOUND: { status: 404, meaning: 'No such merchant event.' },
  SESSION_EXPIRED: { status: 409, meaning: 'This verification expired: resume it for a new link (`POST /kyc/sessions/:merchantBizId/resume`).' },
  SESSION_FAILED: { status: 409, meaning: 'This verification could not be started: resume it (`POST /kyc/sessions/:merchantBizId/resume`).' },
  SESSION_COMPLETED: { status: 409, meaning: 'This verification already has its outcome (or it is being verified).' },
  SESSION_STARTING: { status: 409, meaning: 'This verification is still being started (with `Retry-After`).' },
  SESSION_INTERRUPTED: { status: 409, meaning: 'Its start was interrupted (a crash) before the transaction was stored: resume it, or it ends by itself at its expiry.' },
  CALLBACK_CONFLICT: { status: 409, meaning: 'A different outcome is already recorded for this transaction.' },
  WEBHOOK_NOT_CONFIGURED: { status: 409, meaning: '`MERCHANT_WEBHOOK_URL` is not set: events are recorded (and listed) but not sent, so none can be redelivered.' },
  REQUEST_TIMEOUT: { status: 408, meaning: 'The request did not arrive whole within the server\'s request timeout; the connection is closed.' },
  BODY_TOO_LARGE: { status: 413, meaning: 'The body exceeds 64 KB.' },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, meaning: 'No parser for the body\'s Content-Type (send `application/json`).' },
  RATE_LIMITED: { status: 429, meaning: 'Too many requests from this user or IP, or too many failed authentications from this IP (with `Retry-After`).' },
  ATTEMPTS_EXHAUSTED: { status: 429, meaning: 'The session used `KYC_MAX_TRANSACTIONS_PER_SESSION` transactions (no `Retry-After`: start a new one), or the user `KYC_MAX_STARTS_PER_USER_PER_DAY` in 24 hours (with `Retry-After`).' },
  QPS_BUDGET_EXHAUSTED: { status: 429, meaning: "No slot of the account's QPS budget within `CLOUDAUTH_BUDGET_WAIT_MS` (with `Retry-After`)." },
  HEADERS_TOO_LARGE: { status: 431, meaning: 'The request line and headers exceed 16 KB (Node\'s limit), e.g. a very long URL; the connection is closed.' },
  INTERNAL_ERROR: { status: 500, meaning: 'A bug or an unavailable dependency; details only in the log.' },
  UPSTREAM_REJECTED: { status: 502, meaning: 'Alibaba refused our request: a bug or misconfiguration here.' },
  UPSTREAM_ERROR: { status: 502, meaning: 'Alibaba failed (5xx), was unreachable or answered something unreadable.' },
  UPSTREAM_THROTTLED: { status: 503, meaning: 'Alibaba still throttled after the retries that fit in the deadline (with `Retry-After`).' },
  UPSTREAM_ACCESS_DENIED: { status: 503, meaning: 'Alibaba refused the account or RAM permission: an operator must act.' },
  BUDGET_UNAVAILABLE: { status: 503, meaning: 'Redis is unreachable, so the QPS budget fails closed (with `Retry-After`).' },
  DB_UNAVAILABLE: { status: 503, meaning: 'PostgreSQL is unreachable or slower than `DATABASE_TIMEOUT_MS` (with `Retry-After`); nothing was sent to Alibaba.' },
  REQUEST_ABORTED: { status: 503, meaning: 'The caller went away while the upstream call was pending.' },
  OVERLOADED: { status: 503, meaning: 'The process is overloaded (event-loop delay, memory; see `OVERLOAD_*`), with `Retry-After`.' },
  UPSTREAM_TIMEOUT: { status: 504, meaning: 'No answer within `CLOUDAUTH_TIMEOUT_MS`; the outcome is unknown and is never retried.' },
} as const satisfies Record<string, { status: number; meaning: string }>;

export type ErrorCode = keyof typeof ERROR_CODES;
export type ErrorStatus<C extends ErrorCode> = (typeof ERROR_CODES)[C]['status'];

export const errorStatus = <C extends ErrorCode>(code: C): ErrorStatus<C> => ERROR_CODES[code].status;

/**
 * Codes produced by one mechanism, for the routes that use it (a route lists the groups of what it
 * runs, so its documented codes follow its code path).
 */
export const ERROR_GROUPS = {
  /** Every route: an unexpected failure, and what Node's HTTP parser refuses before routing. */
  always: ['INTERNAL_ERROR', 'DB_UNAVAILABLE', 'REQUEST_TIMEOUT', 'HEADERS_TOO_LARGE'],
  /** Routes behind @fastify/under-pressure. */
  overload: ['OVERLOADED'],
  /** Routes that validate params, query or body. */
  validation: ['VALIDATION_ERROR'],
  /** Routes that read a JSON body (the framework's body parser). */
  body: ['INVALID_JSON', 'BAD_REQUEST', 'BODY_TOO_LARGE', 'UNSUPPORTED_MEDIA_TYPE'],
  /** app.authenticate (caller JWT); RATE_LIMITED beyond the address's failed authentications. */
  auth: ['UNAUTHENTICATED', 'INVALID_TOKEN', 'RATE_LIMITED'],
  /** app.limits.* */
  rateLimit: ['RATE_LIMITED'],
  /** app.budget via app.cloudauth. */
  budget: ['QPS_BUDGET_EXHAUSTED', 'BUDGET_UNAVAILABLE'],
  /** upstreamHttpError (cloudauth/errors.ts). */
  upstream: ['INVALID_META_INFO', 'UPSTREAM_REJECTED', 'UPSTREAM_ERROR', 'UPSTREAM_THROTTLED', 'UPSTREAM_ACCESS_DENIED', 'REQUEST_ABORTED', 'UPSTREAM_TIMEOUT'],
} as const satisfies Record<string, readonly ErrorCode[]>;

/** The README's error table, written from ERROR_CODES. */
export function errorTable(): string {
  const rows = Object.entries(ERROR_CODES)
    .sort(([, a], [, b]) => a.status - b.status)
    .map(([code, { status, meaning }]) => `| ${status} | \`${code}\` | ${meaning.replaceAll('|', '\\|')} |`);
  return ['| Status | Code | Meaning |', '| --- | --- | --- |', ...rows].join('\n');
}
